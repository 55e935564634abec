#pragma once
// A small allocation-free JSON scanner: enough to read a JWT's header and claims and a
// JWKS document. It walks one object's members as views into the text; strings are
// returned raw (escapes not decoded). Nesting is bounded, so hostile input cannot
// exhaust the stack.

#include <cstdint>
#include <string_view>

namespace gw::filters::auth_jwt {

struct JsonValue {
  enum class Type { String, Number, Object, Array, True, False, Null };
  Type type = Type::Null;
  std::string_view raw;  // the value's text; for String, the contents without quotes

  bool isString() const { return type == Type::String; }
  // Integral numbers only (JWT NumericDate may be fractional: the fraction is dropped).
  bool asInt(int64_t& out) const;
};

// Iterates the members of the object at `text` (which must be exactly one object,
// surrounding whitespace allowed).
class JsonObject {
 public:
  explicit JsonObject(std::string_view text);
  bool valid() const { return ok_; }
  // Next member; false at the end or on a syntax error (then valid() is false).
  bool next(std::string_view& key, JsonValue& value);
  // The first member called `key` (scans from the start).
  bool find(std::string_view key, JsonValue& value) const;

 private:
  std::string_view text_;
  size_t pos_ = 0;
  bool ok_ = true;
  bool first_ = true;
  bool done_ = false;
};

// Iterates the elements of an array value.
class JsonArray {
 public:
  explicit JsonArray(std::string_view text);
  bool next(JsonValue& value);
  bool valid() const { return ok_; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  bool ok_ = true;
  bool first_ = true;
  bool done_ = false;
};

// Checks that `text` is one complete JSON value (used before trusting a document).
bool jsonValid(std::string_view text);

}  // namespace gw::filters::auth_jwt
