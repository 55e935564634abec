#pragma once
// Checks filters apply to header names and values they are configured with, so that
// nothing a filter writes can break the framing of a message.

#include <string_view>

namespace gw::filter {

// RFC 9110 token (a field name, a method).
bool isToken(std::string_view s);
// A field value without CR, LF, NUL or other control bytes (HTAB allowed), no leading
// or trailing whitespace.
bool isFieldValue(std::string_view s);
// Fields a filter may not edit: framing (Content-Length, Transfer-Encoding), Host,
// Expect, X-Forwarded-For (the proxy builds it from the trusted-proxy rules), and
// the hop-by-hop fields. The proxy owns those.
bool isReservedField(std::string_view name);

}  // namespace gw::filter
