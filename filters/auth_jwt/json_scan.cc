#include "filters/auth_jwt/json_scan.h"

#include <charconv>

namespace gw::filters::auth_jwt {
namespace {

constexpr int kMaxDepth = 32;

void skipWs(std::string_view t, size_t& p) {
  while (p < t.size() && (t[p] == ' ' || t[p] == '\t' || t[p] == '\n' || t[p] == '\r')) ++p;
}

bool parseValue(std::string_view t, size_t& p, JsonValue& out, int depth);

bool parseString(std::string_view t, size_t& p, std::string_view& out) {
  if (p >= t.size() || t[p] != '"') return false;
  size_t start = ++p;
  while (p < t.size()) {
    char c = t[p];
    if (c == '"') {
      out = t.substr(start, p - start);
      ++p;
      return true;
    }
    if (static_cast<unsigned char>(c) < 0x20) return false;
    if (c == '\\') {
      if (++p >= t.size()) return false;
      char e = t[p];
      if (e == 'u') {
        if (p + 4 >= t.size()) return false;
        for (int i = 1; i <= 4; ++i) {
          char h = t[p + i];
          bool hex = (h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F');
          if (!hex) return false;
        }
        p += 4;
      } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
        return false;
      }
    }
    ++p;
  }
  return false;
}

bool parseContainer(std::string_view t, size_t& p, char close, bool object, int depth) {
  ++p;  // the opening bracket
  skipWs(t, p);
  if (p < t.size() && t[p] == close) {
    ++p;
    return true;
  }
  while (true) {
    skipWs(t, p);
    if (object) {
      std::string_view key;
      if (!parseString(t, p, key)) return false;
      skipWs(t, p);
      if (p >= t.size() || t[p] != ':') return false;
      ++p;
    }
    JsonValue v;
    if (!parseValue(t, p, v, depth + 1)) return false;
    skipWs(t, p);
    if (p >= t.size()) return false;
    if (t[p] == ',') {
      ++p;
      continue;
    }
    if (t[p] == close) {
      ++p;
      return true;
    }
    return false;
  }
}

bool parseValue(std::string_view t, size_t& p, JsonValue& out, int depth) {
  if (depth > kMaxDepth) return false;
  skipWs(t, p);
  if (p >= t.size()) return false;
  size_t start = p;
  char c = t[p];
  if (c == '"') {
    out.type = JsonValue::Type::String;
    return parseString(t, p, out.raw);
  }
  if (c == '{' || c == '[') {
    bool object = c == '{';
    if (!parseContainer(t, p, object ? '}' : ']', object, depth)) return false;
    out.type = object ? JsonValue::Type::Object : JsonValue::Type::Array;
    out.raw = t.substr(start, p - start);
    return true;
  }
  for (auto [word, type] : {std::pair{std::string_view("true"), JsonValue::Type::True},
                            std::pair{std::string_view("false"), JsonValue::Type::False},
                            std::pair{std::string_view("null"), JsonValue::Type::Null}}) {
    if (t.substr(p, word.size()) == word) {
      p += word.size();
      out.type = type;
      out.raw = word;
      return true;
    }
  }
  if (c == '-' || (c >= '0' && c <= '9')) {
    ++p;
    while (p < t.size() && ((t[p] >= '0' && t[p] <= '9') || t[p] == '.' || t[p] == 'e' ||
                            t[p] == 'E' || t[p] == '+' || t[p] == '-')) {
      ++p;
    }
    out.type = JsonValue::Type::Number;
    out.raw = t.substr(start, p - start);
    return true;
  }
  return false;
}

}  // namespace

bool JsonValue::asInt(int64_t& out) const {
  if (type != Type::Number || raw.find_first_of("eE") != std::string_view::npos) return false;
  std::string_view digits = raw.substr(0, raw.find('.'));
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
  return ec == std::errc() && end == digits.data() + digits.size();
}

JsonObject::JsonObject(std::string_view text) : text_(text) {
  skipWs(text_, pos_);
  if (pos_ >= text_.size() || text_[pos_] != '{') {
    ok_ = false;
    return;
  }
  ++pos_;
}

bool JsonObject::next(std::string_view& key, JsonValue& value) {
  if (!ok_ || done_) return false;
  skipWs(text_, pos_);
  if (pos_ < text_.size() && text_[pos_] == '}') {
    done_ = true;
    return false;
  }
  if (!first_) {
    if (pos_ >= text_.size() || text_[pos_] != ',') return ok_ = false;
    ++pos_;
    skipWs(text_, pos_);
  }
  first_ = false;
  if (!parseString(text_, pos_, key)) return ok_ = false;
  skipWs(text_, pos_);
  if (pos_ >= text_.size() || text_[pos_] != ':') return ok_ = false;
  ++pos_;
  if (!parseValue(text_, pos_, value, 1)) return ok_ = false;
  return true;
}

bool JsonObject::find(std::string_view key, JsonValue& value) const {
  JsonObject scan(text_);
  std::string_view k;
  JsonValue v;
  while (scan.next(k, v)) {
    if (k == key) {
      value = v;
      return true;
    }
  }
  return false;
}

JsonArray::JsonArray(std::string_view text) : text_(text) {
  skipWs(text_, pos_);
  if (pos_ >= text_.size() || text_[pos_] != '[') {
    ok_ = false;
    return;
  }
  ++pos_;
}

bool JsonArray::next(JsonValue& value) {
  if (!ok_ || done_) return false;
  skipWs(text_, pos_);
  if (pos_ < text_.size() && text_[pos_] == ']') {
    done_ = true;
    return false;
  }
  if (!first_) {
    if (pos_ >= text_.size() || text_[pos_] != ',') return ok_ = false;
    ++pos_;
  }
  first_ = false;
  if (!parseValue(text_, pos_, value, 1)) return ok_ = false;
  return true;
}

bool jsonValid(std::string_view text) {
  size_t p = 0;
  JsonValue v;
  if (!parseValue(text, p, v, 0)) return false;
  skipWs(text, p);
  return p == text.size();
}

}  // namespace gw::filters::auth_jwt
