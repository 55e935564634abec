#pragma once
// Prometheus text exposition format 0.0.4: `# HELP` and `# TYPE` once per metric family,
// then its samples, label values escaped (backslash, double quote, newline). Used by the
// control thread to render GET /metrics; nothing here is on the request path.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "gateway/observe/histogram.h"

namespace gw::observe {

inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

using Label = std::pair<std::string_view, std::string_view>;

class PrometheusWriter {
 public:
  // Starts a family: `type` is "counter", "gauge" or "histogram".
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, std::initializer_list<Label> labels, uint64_t value);
  void sample(std::string_view name, std::initializer_list<Label> labels, double value);
  // The _bucket/_sum/_count samples of a histogram (summed over workers by the caller):
  // `buckets[i]` per-bucket counts (kDurationBounds + 1 of them), `sum_us` microseconds.
  void histogram(std::string_view name, std::initializer_list<Label> labels,
                 const uint64_t* buckets, uint64_t sum_us);

  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

  static void appendEscapedLabelValue(std::string& out, std::string_view value);

 private:
  void begin(std::string_view name, std::initializer_list<Label> labels,
             std::string_view extra_label = {}, std::string_view extra_value = {});
  std::string out_;
};

}  // namespace gw::observe
