#pragma once
// Errors are values at module borders. An Error names what went wrong in a way a
// caller can act on: which side caused it, whether retrying may help, and the HTTP
// status a proxy would answer with.

#include <string>
#include <utility>
#include <variant>

namespace gw {

enum class ErrorSource { Internal, Downstream, Upstream, Config };

struct Error {
  std::string message;
  int http_status = 500;
  ErrorSource source = ErrorSource::Internal;
  bool retryable = false;
};

// A small expected<T, Error>. `ok()` before `value()`; `error()` only when !ok().
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct Unit {};
using Status = Result<Unit>;
inline Status okStatus() { return Unit{}; }

}  // namespace gw
