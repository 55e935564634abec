#define CATCH_CONFIG_MAIN
#include "gateway/filter/worker_resources.h"

#include <uv.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

namespace gw::filter {
namespace {

struct Recorder : WorkerResource {
  explicit Recorder(std::vector<std::string>& log, std::string name)
      : log(log), name(std::move(name)) {}
  ~Recorder() override { log.push_back("destroyed " + name); }
  void close() override { log.push_back("closed " + name); }
  std::vector<std::string>& log;
  std::string name;
};

TEST_CASE("a resource is made once per key and closed before it is destroyed") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::vector<std::string> log;
  {
    LoopContext context(&loop);
    WorkerResources resources(context);
    int made = 0;
    auto make = [&](const char* name) {
      return [&made, &log, name] {
        ++made;
        return std::make_unique<Recorder>(log, name);
      };
    };
    Recorder* a = resources.get<Recorder>("redis:a", make("a"));
    REQUIRE(a != nullptr);
    CHECK(resources.get<Recorder>("redis:a", make("again")) == a);
    Recorder* b = resources.get<Recorder>("redis:b", make("b"));
    CHECK(b != a);
    CHECK(made == 2);
    CHECK(&resources.loop() == &context);

    resources.close();
    CHECK(log == std::vector<std::string>{"closed a", "closed b"});
    // After close nothing new is made (the worker is stopping).
    CHECK(resources.get<Recorder>("redis:c", make("c")) == nullptr);
    CHECK(made == 2);
    context.close();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  CHECK(log.size() == 4);
  CHECK(log[2].rfind("destroyed ", 0) == 0);
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace
}  // namespace gw::filter
