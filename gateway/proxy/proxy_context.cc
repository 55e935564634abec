#include "gateway/proxy/proxy_context.h"

#include "gateway/core/log.h"
#include "gateway/proxy/downstream_session.h"
#include "gateway/proxy/exchange.h"

namespace gw::proxy {
ProxyContext::ProxyContext(LoopContext& loop, std::shared_ptr<const config::Snapshot> snapshot,
                           WorkerStats& stats)
    : session_slabs_(sizeof(DownstreamSession), alignof(DownstreamSession)),
      loop_(loop),
      current_(new PinnedSnapshot(std::move(snapshot))),
      upstreams_(loop),
      stats_(stats),
      filter_resources_(loop),
      access_log_(loop, stats.access_log),
      span_exporter_(loop, stats.trace_export) {
  loop.setApp(this);
  upstreams_.setStats(&stats_.balancing);
  upstreams_.apply(current_->get());
  configureAccessLog();
  span_exporter_.configure(current_->get().tracing);
}

void ProxyContext::configureAccessLog() {
  std::string error = access_log_.configure(current_->get().access_log);
  if (!error.empty()) log::error("access log disabled", {log::str("error", error)});
}

ProxyContext::~ProxyContext() {
  for (PinnedSnapshot* p : retired_) delete p;
  delete current_;
}

void ProxyContext::unpin(PinnedSnapshot* pinned) {
  if (pinned->release()) {
    std::erase(retired_, pinned);
    delete pinned;
    stats_.snapshots_retained.set(retired_.size());
  }
}

void ProxyContext::applySnapshot(std::shared_ptr<const config::Snapshot> snapshot) {
  PinnedSnapshot* old = current_;
  current_ = new PinnedSnapshot(std::move(snapshot));
  old->setCurrent(false);
  if (old->unused()) {
    delete old;
  } else {
    retired_.push_back(old);
  }
  upstreams_.apply(current_->get());
  configureAccessLog();
  span_exporter_.configure(current_->get().tracing);
  // Idle keep-alive sessions move to the new snapshot now, so that only work in flight
  // (and sessions of removed listeners) keeps an old one alive.
  for (DownstreamSession* s = sessions_; s != nullptr; s = s->next_session) s->onSnapshotChanged();
  stats_.snapshots_retained.set(retired_.size());
}

Exchange* ProxyContext::acquireExchange(Downstream& session) {
  Exchange* e = free_exchanges_.take();
  if (e == nullptr) e = new Exchange(*this);
  e->begin(session);
  return e;
}

http::Parser* ProxyContext::acquireParser(http::MessageSink* sink, const config::Limits& limits) {
  http::Parser* p = free_parsers_.take();
  if (p == nullptr) {
    p = new http::Parser(HTTP_REQUEST, sink);
  } else {
    p->setSink(sink);
  }
  p->setLimits(limits.max_header_bytes, limits.max_headers);
  return p;
}

void ProxyContext::releaseParser(http::Parser* parser) {
  parser->reset();
  if (!free_parsers_.give(parser)) delete parser;
}

size_t ProxyContext::trimPools() { return free_exchanges_.trim() + free_parsers_.trim(); }

void ProxyContext::releaseExchange(Exchange* exchange) {
  exchange->reset();
  if (!free_exchanges_.give(exchange)) delete exchange;
}

void ProxyContext::addSession(DownstreamSession* s) {
  s->prev_session = nullptr;
  s->next_session = sessions_;
  if (sessions_ != nullptr) sessions_->prev_session = s;
  sessions_ = s;
  session_count_++;
}

void ProxyContext::removeSession(DownstreamSession* s) {
  if (s->prev_session != nullptr) {
    s->prev_session->next_session = s->next_session;
  } else {
    sessions_ = s->next_session;
  }
  if (s->next_session != nullptr) s->next_session->prev_session = s->prev_session;
  s->prev_session = s->next_session = nullptr;
  session_count_--;
}

void ProxyContext::drain() {
  draining_ = true;
  upstreams_.drain();
  for (DownstreamSession* s = sessions_; s != nullptr;) {
    DownstreamSession* next = s->next_session;
    if (s->startDrain(s->listener().limits.drainSpreadMs())) stats_.drains_started.add();
    s = next;
  }
}

void ProxyContext::drainSessionsOfRemovedListeners() {
  const config::Snapshot& now = current_->get();
  for (DownstreamSession* s = sessions_; s != nullptr; s = s->next_session) {
    bool kept = false;
    for (const config::Listener& l : now.listeners) {
      kept = kept || (l.name == s->listener().name && l.listen == s->listener().listen);
    }
    if (!kept && s->startDrain(s->listener().limits.drainSpreadMs())) {
      stats_.drains_started.add();
    }
  }
}

void ProxyContext::closeAll() {
  for (DownstreamSession* s = sessions_; s != nullptr;) {
    DownstreamSession* next = s->next_session;
    s->closeNow();
    s = next;
  }
  upstreams_.closeIdle();
}

}  // namespace gw::proxy
