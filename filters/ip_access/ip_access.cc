#include "filters/ip_access/ip_access.h"

namespace gw::filters::ip_access {
namespace {

bool inAny(const std::vector<net::Cidr>& list, const net::SocketAddress& a) {
  for (const net::Cidr& cidr : list) {
    if (cidr.contains(a)) return true;
  }
  return false;
}

class IpAccess final : public filter::Filter {
 public:
  explicit IpAccess(const Lists& lists) : lists_(lists) {}
  filter::Status onRequestHeaders(filter::Context& ctx) override {
    if (ctx.request.client_address != nullptr && lists_.permits(*ctx.request.client_address)) {
      return filter::Status::Continue;
    }
    ctx.reply.status = 403;
    ctx.reply.message = "client address not allowed";
    return filter::Status::Respond;
  }

 private:
  const Lists& lists_;
};

class Factory final : public filter::FilterFactory {
 public:
  explicit Factory(Lists lists) : lists_(std::move(lists)) {}
  filter::Filter* create(filter::Context& ctx) const override {
    return ctx.arena().make<IpAccess>(lists_);
  }

 private:
  Lists lists_;
};

void readList(filter::ConfigTable& table, std::string_view key, std::vector<net::Cidr>& out) {
  std::vector<std::pair<std::string, const toml::node*>> items;
  if (!table.getStringArray(key, items)) return;
  for (const auto& [text, node] : items) {
    std::optional<net::Cidr> cidr = net::parseCidr(text);
    if (!cidr) {
      table.error(*node, filter::quote(text) +
                             " is not an IP address or CIDR like \"10.0.0.0/8\" or \"::1\"");
      continue;
    }
    out.push_back(*cidr);
  }
}

}  // namespace

bool Lists::permits(const net::SocketAddress& client) const {
  if (inAny(deny, client)) return false;
  return allow.empty() || inAny(allow, client);
}

std::vector<std::string_view> keys() { return {"allow", "deny"}; }

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table) {
  Lists lists;
  readList(table, "allow", lists.allow);
  readList(table, "deny", lists.deny);
  if (table.errorCount() != 0) return nullptr;
  if (lists.allow.empty() && lists.deny.empty()) {
    table.errorHere("give \"allow\" or \"deny\" (or both): an empty filter would do nothing");
    return nullptr;
  }
  return std::make_shared<Factory>(std::move(lists));
}

}  // namespace gw::filters::ip_access
