#include "gateway/filter/chain.h"

#include <cstdint>
#include <mutex>

#include "gateway/core/log.h"

namespace gw::filter {

// ---------------------------------------------------------------- Filter defaults

Status Filter::onRequestHeaders(Context&) { return Status::Continue; }
Status Filter::onRequestBody(Context&, std::string_view, bool) { return Status::Continue; }
void Filter::onResponseHeaders(Context&) {}
void Filter::onResponseBody(Context&, std::string_view, bool) {}
void Filter::onDestroy(Context&) {}

// ---------------------------------------------------------------- Context

void Context::resume(Status status) {
  if (run_ != nullptr) run_->resumeFromFilter(status);
}

void Context::reset() {
  request = RequestInfo{};
  request_id = {};
  traceparent = {};
  parent_span_id = {};
  upstream_target = {};
  request_headers.clear();
  response_status = 0;
  response_head = nullptr;
  response_headers.clear();
  reply = LocalReply{};
  arena_.reset();
}

// ---------------------------------------------------------------- ChainConfig

namespace {
std::mutex& slotMutex() {
  static std::mutex mutex;
  return mutex;
}
std::vector<std::string>& slotNames() {
  static std::vector<std::string> names{""};
  return names;
}
}  // namespace

uint16_t filterTypeSlot(const std::string& type) {
  std::lock_guard lock(slotMutex());
  std::vector<std::string>& names = slotNames();
  for (size_t i = 1; i < names.size(); ++i) {
    if (names[i] == type) return static_cast<uint16_t>(i);
  }
  if (names.size() >= kFilterStatSlots) return 0;
  names.push_back(type);
  return static_cast<uint16_t>(names.size() - 1);
}

std::vector<std::string> filterTypeSlotNames() {
  std::lock_guard lock(slotMutex());
  return slotNames();
}

void ChainConfig::append(std::string type, std::shared_ptr<const FilterFactory> factory) {
  request_body = request_body || factory->wantsRequestBody();
  response_body = response_body || factory->wantsResponseBody();
  type_slots.push_back(filterTypeSlot(type));
  types.push_back(std::move(type));
  factories.push_back(std::move(factory));
}

// ---------------------------------------------------------------- ChainRun

Context& ChainRun::start(const ChainConfig& config) {
  config_ = &config;
  filters_.clear();
  for (const auto& factory : config.factories) filters_.push_back(factory->create(ctx_));
  return ctx_;
}

Status ChainRun::runRequestHeaders() {
  while (next_ < filters_.size()) {
    in_call_ = true;
    Status status = filters_[next_]->onRequestHeaders(ctx_);
    in_call_ = false;
    ++next_;
    if (status == Status::Pause && has_deferred_) {
      // The filter finished its async work before returning: act on it now.
      status = deferred_;
      has_deferred_ = false;
    }
    if (status == Status::Continue) {
      ++passed_;
      continue;
    }
    if (status == Status::Pause) paused_ = true;
    if (status == Status::Respond) replied_by_ = next_ - 1;
    return status;
  }
  return Status::Continue;
}

void ChainRun::resumeFromFilter(Status status) {
  if (status == Status::Pause) status = Status::Continue;  // a resume that resumes nothing
  if (in_call_) {
    has_deferred_ = true;
    deferred_ = status;
    return;
  }
  if (!paused_) {
    log::warn("filter resumed a chain that is not paused", {});
    return;
  }
  paused_ = false;
  if (status == Status::Respond) replied_by_ = next_ - 1;
  if (status == Status::Continue) {
    ++passed_;
    status = runRequestHeaders();
    if (status == Status::Pause) return;  // the next filter paused; it will resume
  }
  if (on_resume_ != nullptr) on_resume_(owner_, status);
}

Status ChainRun::runRequestBody(std::string_view chunk, bool end) {
  if (!config_->request_body) return Status::Continue;
  for (size_t i = 0; i < passed_; ++i) {
    Status status = filters_[i]->onRequestBody(ctx_, chunk, end);
    if (status == Status::Respond) {
      replied_by_ = i;
      return status;
    }
  }
  return Status::Continue;
}

void ChainRun::runResponseHeaders(int status, const http::MessageHead* head) {
  if (response_ran_) return;  // one response per exchange
  response_ran_ = true;
  ctx_.response_status = status;
  ctx_.response_head = head;
  for (size_t i = passed_; i-- > 0;) filters_[i]->onResponseHeaders(ctx_);
}

void ChainRun::runResponseBody(std::string_view chunk, bool end) {
  if (!config_->response_body) return;
  for (size_t i = passed_; i-- > 0;) filters_[i]->onResponseBody(ctx_, chunk, end);
}

void ChainRun::reset() {
  if (config_ == nullptr) return;
  for (Filter* filter : filters_) filter->onDestroy(ctx_);
  filters_.clear();
  ctx_.reset();  // runs the filters' destructors with the arena
  config_ = nullptr;
  next_ = passed_ = 0;
  replied_by_ = SIZE_MAX;
  in_call_ = paused_ = response_ran_ = has_deferred_ = false;
}

}  // namespace gw::filter
