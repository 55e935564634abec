#pragma once
// Conversions between HTTP/2 field blocks and the HTTP/1 message model the proxy uses,
// with the checks of RFC 9113 §8.2-8.3. Pure code (no nghttp2, no I/O): unit-tested.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/http/parser.h"

namespace gw::http2 {

// Collects one request's header block into an http::MessageHead, as if it had come
// over HTTP/1.1: the request line from :method and :path, Host from :authority, the
// other fields in their order (several cookie fields joined into one, RFC 9113 §8.2.3).
class RequestHeadBuilder {
 public:
  void reset();
  // One decoded field. Returns null, or why the request is malformed (the stream is
  // reset with PROTOCOL_ERROR).
  const char* add(std::string_view name, std::string_view value);
  // After the block's last field. `end_stream`: the request has no body. Returns null or
  // why the request is malformed. On success head() is valid until the next reset().
  const char* finish(bool end_stream);
  const http::MessageHead& head() const { return head_; }
  // Decoded size as RFC 9113 §6.5.2 counts it (name + value + 32 per field).
  uint64_t listSize() const { return list_size_; }

 private:
  std::string bytes_;
  std::vector<http::HeaderSpan> spans_;
  http::Span method_, scheme_, authority_, path_;
  bool has_method_ = false, has_scheme_ = false, has_authority_ = false, has_path_ = false;
  bool regular_seen_ = false;
  bool has_content_length_ = false;
  uint64_t content_length_ = 0;
  uint64_t list_size_ = 0;
  http::MessageHead head_;
};

// The llhttp method for a method name, or -1 when llhttp does not know it.
int methodFromName(std::string_view name);

// A response head for HTTP/2: the status and the fields to send, names lowercased, the
// connection-specific fields (Connection and those it names, Keep-Alive,
// Proxy-Connection, Transfer-Encoding, Upgrade, TE) dropped.
struct ResponseFields {
  char status[3] = {'0', '0', '0'};
  std::string names_and_values;  // name then value, back to back
  struct Field {
    uint32_t name_offset, name_length, value_offset, value_length;
  };
  std::vector<Field> fields;
  std::string_view name(size_t i) const {
    return std::string_view(names_and_values).substr(fields[i].name_offset, fields[i].name_length);
  }
  std::string_view value(size_t i) const {
    return std::string_view(names_and_values)
        .substr(fields[i].value_offset, fields[i].value_length);
  }
};
void toResponseFields(const http::MessageHead& head, ResponseFields& out);

// A request head for an upstream HTTP/2 stream: the pseudo-fields (:method, :scheme,
// :authority from Host, :path) first, then the fields, names lowercased, Host and the
// connection-specific fields dropped (TE kept only as "te: trailers", RFC 9113 §8.2.2).
struct RequestFields {
  std::string names_and_values;  // name then value, back to back
  std::vector<ResponseFields::Field> fields;
  std::string_view name(size_t i) const {
    return std::string_view(names_and_values).substr(fields[i].name_offset, fields[i].name_length);
  }
  std::string_view value(size_t i) const {
    return std::string_view(names_and_values)
        .substr(fields[i].value_offset, fields[i].value_length);
  }
};
void toRequestFields(const http::MessageHead& head, std::string_view scheme, RequestFields& out);

}  // namespace gw::http2
