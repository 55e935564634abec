#define CATCH_CONFIG_MAIN
#include "gateway/filter/chain.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace gw::filter;

namespace {

// A scripted filter: records each call in a shared log and returns what it is told.
struct Script {
  std::string name;
  Status on_headers = Status::Continue;
  Status on_body = Status::Continue;
  bool resume_inline = false;  // call ctx.resume(Continue) inside onRequestHeaders
  std::vector<std::string>* log = nullptr;
  Context** paused_ctx = nullptr;  // where a pausing filter leaves its context
};

class ScriptFilter final : public Filter {
 public:
  explicit ScriptFilter(const Script& s) : s_(s) {}
  ~ScriptFilter() override { s_.log->push_back(s_.name + ".dtor"); }
  Status onRequestHeaders(Context& ctx) override {
    s_.log->push_back(s_.name + ".headers");
    if (s_.on_headers == Status::Respond) ctx.reply.status = 403;
    if (s_.on_headers == Status::Pause) {
      if (s_.resume_inline) ctx.resume(Status::Continue);
      if (s_.paused_ctx) *s_.paused_ctx = &ctx;
    }
    return s_.on_headers;
  }
  Status onRequestBody(Context&, std::string_view chunk, bool end) override {
    s_.log->push_back(s_.name + ".body:" + std::string(chunk) + (end ? ":end" : ""));
    return s_.on_body;
  }
  void onResponseHeaders(Context& ctx) override {
    s_.log->push_back(s_.name + ".response:" + std::to_string(ctx.response_status));
  }
  void onDestroy(Context&) override { s_.log->push_back(s_.name + ".destroy"); }

 private:
  const Script& s_;
};

class ScriptFactory final : public FilterFactory {
 public:
  explicit ScriptFactory(Script s) : s_(std::move(s)) {}
  Filter* create(Context& ctx) const override { return ctx.arena().make<ScriptFilter>(s_); }
  bool wantsRequestBody() const override { return true; }

 private:
  Script s_;
};

struct Fixture {
  std::vector<std::string> log;
  ChainConfig config;
  Context* paused = nullptr;
  std::vector<Status> resumed;

  void add(std::string name, Status headers = Status::Continue, bool inline_resume = false) {
    Script s;
    s.name = std::move(name);
    s.on_headers = headers;
    s.resume_inline = inline_resume;
    s.log = &log;
    s.paused_ctx = &paused;
    config.append("script", std::make_shared<ScriptFactory>(std::move(s)));
  }
  static void onResume(void* self, Status status) {
    static_cast<Fixture*>(self)->resumed.push_back(status);
  }
};

}  // namespace

TEST_CASE("request phase in order, response phase in reverse, destroy at reset") {
  Fixture f;
  f.add("a");
  f.add("b");
  ChainRun run;
  run.start(f.config);
  CHECK(run.runRequestHeaders() == Status::Continue);
  run.runResponseHeaders(200, nullptr);
  run.runResponseHeaders(200, nullptr);  // once per exchange
  run.reset();
  CHECK(f.log == std::vector<std::string>{"a.headers", "b.headers", "b.response:200",
                                          "a.response:200", "a.destroy", "b.destroy", "b.dtor",
                                          "a.dtor"});
  CHECK_FALSE(run.active());
}

TEST_CASE("Respond stops the chain; only the filters before it see the response") {
  Fixture f;
  f.add("a");
  f.add("deny", Status::Respond);
  f.add("never");
  ChainRun run;
  run.start(f.config);
  CHECK(run.runRequestHeaders() == Status::Respond);
  CHECK(run.context().reply.status == 403);
  run.runResponseHeaders(403, nullptr);
  CHECK(f.log == std::vector<std::string>{"a.headers", "deny.headers", "a.response:403"});
}

TEST_CASE("Pause waits; resume(Continue) runs the rest and reports to the owner") {
  Fixture f;
  f.add("a");
  f.add("async", Status::Pause);
  f.add("c");
  ChainRun run;
  run.setOwner(&f, &Fixture::onResume);
  run.start(f.config);
  CHECK(run.runRequestHeaders() == Status::Pause);
  CHECK(run.paused());
  CHECK(f.log == std::vector<std::string>{"a.headers", "async.headers"});
  REQUIRE(f.paused != nullptr);
  f.paused->resume(Status::Continue);
  CHECK_FALSE(run.paused());
  CHECK(f.resumed == std::vector<Status>{Status::Continue});
  CHECK(f.log.back() == "c.headers");
  // A second resume is a bug in the filter; it is ignored.
  f.paused->resume(Status::Continue);
  CHECK(f.resumed.size() == 1);
  run.runResponseHeaders(200, nullptr);
  CHECK(f.log.back() == "a.response:200");
  CHECK(f.log[f.log.size() - 2] == "async.response:200");
}

TEST_CASE("Pause then resume(Respond) reports Respond and skips the rest") {
  Fixture f;
  f.add("async", Status::Pause);
  f.add("c");
  ChainRun run;
  run.setOwner(&f, &Fixture::onResume);
  run.start(f.config);
  CHECK(run.runRequestHeaders() == Status::Pause);
  f.paused->reply.status = 429;
  f.paused->resume(Status::Respond);
  CHECK(f.resumed == std::vector<Status>{Status::Respond});
  CHECK(f.log == std::vector<std::string>{"async.headers"});
  run.runResponseHeaders(429, nullptr);  // the responder itself does not see it
  CHECK(f.log == std::vector<std::string>{"async.headers"});
}

TEST_CASE("a resume while the filter's own call is on the stack is deferred, not re-entered") {
  Fixture f;
  f.add("quick", Status::Pause, /*inline_resume=*/true);
  f.add("c");
  ChainRun run;
  run.setOwner(&f, &Fixture::onResume);
  run.start(f.config);
  CHECK(run.runRequestHeaders() == Status::Continue);
  CHECK_FALSE(run.paused());
  CHECK(f.resumed.empty());  // the owner is not called back from inside the run
  CHECK(f.log == std::vector<std::string>{"quick.headers", "c.headers"});
}

TEST_CASE("body chunks go to the filters that continued, until one responds") {
  Fixture f;
  f.add("a");
  f.add("b");
  ChainRun run;
  run.start(f.config);
  REQUIRE(run.runRequestHeaders() == Status::Continue);
  CHECK(run.runRequestBody("xy", false) == Status::Continue);
  CHECK(run.runRequestBody("", true) == Status::Continue);
  CHECK(f.log == std::vector<std::string>{"a.headers", "b.headers", "a.body:xy", "b.body:xy",
                                          "a.body::end", "b.body::end"});
}

TEST_CASE("a chain run is reusable: the second request starts clean") {
  Fixture f;
  f.add("a", Status::Respond);
  ChainRun run;
  for (int i = 0; i < 3; ++i) {
    Context& ctx = run.start(f.config);
    ctx.request_id = "x";
    ctx.request_headers.set("X-A", "1");
    CHECK(run.runRequestHeaders() == Status::Respond);
    run.reset();
    CHECK(run.context().request_id.empty());
    CHECK(run.context().request_headers.empty());
    CHECK(run.context().reply.status == 500);
  }
}
