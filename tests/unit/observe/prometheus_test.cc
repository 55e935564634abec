#define CATCH_CONFIG_MAIN
#include "gateway/observe/prometheus.h"

#include <catch2/catch.hpp>
#include <string>

#include "gateway/observe/histogram.h"
#include "gateway/observe/process_stats.h"

using namespace gw::observe;

TEST_CASE("families have HELP and TYPE lines, samples their labels") {
  PrometheusWriter w;
  w.family("gateway_x_total", "counter", "Things.\nMore \\ things.");
  w.sample("gateway_x_total", {}, uint64_t{3});
  w.sample("gateway_x_total", {{"route", "a"}, {"class", "2xx"}}, uint64_t{18446744073709551615u});
  w.family("gateway_g", "gauge", "A gauge.");
  w.sample("gateway_g", {}, 0.25);
  CHECK(w.text() ==
        "# HELP gateway_x_total Things.\\nMore \\\\ things.\n"
        "# TYPE gateway_x_total counter\n"
        "gateway_x_total 3\n"
        "gateway_x_total{route=\"a\",class=\"2xx\"} 18446744073709551615\n"
        "# HELP gateway_g A gauge.\n"
        "# TYPE gateway_g gauge\n"
        "gateway_g 0.25\n");
}

TEST_CASE("label values escape backslash, double quote and newline") {
  std::string out;
  PrometheusWriter::appendEscapedLabelValue(out, "a\\b\"c\nd'e");
  CHECK(out == "a\\\\b\\\"c\\nd'e");
}

TEST_CASE("a histogram's buckets are cumulative, with +Inf, _sum in seconds and _count") {
  DurationHistogram h;
  h.observe(400);         // <= 0.5ms
  h.observe(500);         // <= 0.5ms (le is inclusive)
  h.observe(501);         // <= 1ms
  h.observe(20'000'000);  // over 10s: +Inf only
  CHECK(h.bucket(0) == 2);
  CHECK(h.bucket(1) == 1);
  CHECK(h.bucket(kDurationBounds) == 1);
  uint64_t buckets[kDurationBounds + 1];
  for (size_t i = 0; i <= kDurationBounds; ++i) buckets[i] = h.bucket(i);
  PrometheusWriter w;
  w.histogram("d_seconds", {{"route", "r"}}, buckets, h.sumUs());
  const std::string& t = w.text();
  CHECK(t.find("d_seconds_bucket{route=\"r\",le=\"0.0005\"} 2\n") != std::string::npos);
  CHECK(t.find("d_seconds_bucket{route=\"r\",le=\"0.001\"} 3\n") != std::string::npos);
  CHECK(t.find("d_seconds_bucket{route=\"r\",le=\"10\"} 3\n") != std::string::npos);
  CHECK(t.find("d_seconds_bucket{route=\"r\",le=\"+Inf\"} 4\n") != std::string::npos);
  CHECK(t.find("d_seconds_sum{route=\"r\"} 20.001401\n") != std::string::npos);
  CHECK(t.find("d_seconds_count{route=\"r\"} 4\n") != std::string::npos);
}

TEST_CASE("process figures come from /proc") {
  ProcessStats p = readProcessStats();
  CHECK(p.resident_bytes > 0);
  CHECK(p.virtual_bytes >= p.resident_bytes);
  CHECK(p.open_fds >= 3);  // stdin, stdout, stderr at least
  CHECK(p.threads >= 1);
  CHECK(processUptimeSeconds() >= 0);
  CHECK(processStartTimeSeconds() > 1.6e9);
}
