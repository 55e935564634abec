#pragma once
// An overlay of header edits on top of a parsed head: filters record set/add/remove
// here and the serialiser applies them while it copies the original fields, so headers
// are never copied into a map. Names and values are views that must outlive the
// exchange's write of the head (the filter config, or the request's arena).

#include <cstddef>
#include <string_view>
#include <vector>

namespace gw::http {
struct MessageHead;
}

namespace gw::filter {

class HeaderEdits {
 public:
  enum class Op { Set, Add, Remove };
  struct Edit {
    Op op;
    std::string_view name;
    std::string_view value;
    bool live;  // false once a later set/remove of the same name superseded it
  };

  // Replaces every original field of that name and every earlier edit of it.
  void set(std::string_view name, std::string_view value);
  // Appends one more field (originals stay).
  void add(std::string_view name, std::string_view value);
  // Drops every original field of that name and every earlier edit of it.
  void remove(std::string_view name);

  // True when the original fields called `name` must not be written.
  bool dropsOriginal(std::string_view name) const;
  // The value a reader of the edited head would see first for `name`: the first live
  // edit if the originals were dropped, else the first original, else the first live
  // edit. `head` may be null (no originals).
  bool find(const http::MessageHead* head, std::string_view name, std::string_view& out) const;

  const std::vector<Edit>& edits() const { return edits_; }
  bool empty() const { return edits_.empty(); }
  void clear() { edits_.clear(); }  // keeps capacity: the exchange is pooled

 private:
  void supersede(std::string_view name);
  std::vector<Edit> edits_;
};

}  // namespace gw::filter
