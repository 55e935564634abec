#pragma once
// The one way an auth filter refuses a request: 401 with a `WWW-Authenticate` challenge
// and the shared local-reply message.

#include <string_view>

#include "gateway/filter/filter.h"

namespace gw::filter {

inline Status unauthorized(Context& ctx, std::string_view challenge, std::string_view message) {
  ctx.response_headers.set("WWW-Authenticate", challenge);
  ctx.reply.status = 401;
  ctx.reply.message = message;
  return Status::Respond;
}

}  // namespace gw::filter
