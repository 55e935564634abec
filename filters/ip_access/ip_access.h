#pragma once
// ip_access: allow and deny lists of CIDRs on the client address as the trusted-proxy
// rules establish it ([forwarding] trusted_proxies). Deny wins; a non-empty allow list
// refuses everyone not on it. Refused requests get 403.
//
//   { type = "ip_access", allow = ["10.0.0.0/8", "::1"], deny = ["10.0.66.0/24"] }

#include <string_view>
#include <vector>

#include "gateway/filter/registry.h"
#include "gateway/net/address.h"

namespace gw::filters::ip_access {

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table);
std::vector<std::string_view> keys();

struct Lists {
  std::vector<net::Cidr> allow;
  std::vector<net::Cidr> deny;
  bool permits(const net::SocketAddress& client) const;
};

}  // namespace gw::filters::ip_access
