#include "gateway/observe/prometheus.h"

#include <cmath>
#include <cstdio>

namespace gw::observe {
namespace {

void appendDouble(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buffer[32];
  int n = std::snprintf(buffer, sizeof buffer, "%.9g", v);
  out.append(buffer, static_cast<size_t>(n));
}

}  // namespace

void PrometheusWriter::appendEscapedLabelValue(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
}

void PrometheusWriter::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  for (char c : help) {  // HELP escapes backslash and newline only
    if (c == '\\') {
      out_ += "\\\\";
    } else if (c == '\n') {
      out_ += "\\n";
    } else {
      out_.push_back(c);
    }
  }
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void PrometheusWriter::begin(std::string_view name, std::initializer_list<Label> labels,
                             std::string_view extra_label, std::string_view extra_value) {
  out_ += name;
  if (labels.size() == 0 && extra_label.empty()) {
    out_ += ' ';
    return;
  }
  out_ += '{';
  bool first = true;
  for (const Label& l : labels) {
    if (!first) out_ += ',';
    first = false;
    out_ += l.first;
    out_ += "=\"";
    appendEscapedLabelValue(out_, l.second);
    out_ += '"';
  }
  if (!extra_label.empty()) {
    if (!first) out_ += ',';
    out_ += extra_label;
    out_ += "=\"";
    out_ += extra_value;
    out_ += '"';
  }
  out_ += "} ";
}

void PrometheusWriter::sample(std::string_view name, std::initializer_list<Label> labels,
                              uint64_t value) {
  begin(name, labels);
  out_ += std::to_string(value);
  out_ += '\n';
}

void PrometheusWriter::sample(std::string_view name, std::initializer_list<Label> labels,
                              double value) {
  begin(name, labels);
  appendDouble(out_, value);
  out_ += '\n';
}

void PrometheusWriter::histogram(std::string_view name, std::initializer_list<Label> labels,
                                 const uint64_t* buckets, uint64_t sum_us) {
  std::string bucket_name = std::string(name) + "_bucket";
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= kDurationBounds; ++i) {
    cumulative += buckets[i];
    std::string le;
    if (i == kDurationBounds) {
      le = "+Inf";
    } else {
      appendDouble(le, static_cast<double>(kDurationBoundsUs[i]) / 1e6);
    }
    begin(bucket_name, labels, "le", le);
    out_ += std::to_string(cumulative);
    out_ += '\n';
  }
  begin(std::string(name) + "_sum", labels);
  appendDouble(out_, static_cast<double>(sum_us) / 1e6);
  out_ += '\n';
  begin(std::string(name) + "_count", labels);
  out_ += std::to_string(cumulative);
  out_ += '\n';
}

}  // namespace gw::observe
