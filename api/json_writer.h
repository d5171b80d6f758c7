// Private to api/: JSON text written straight into a string, without a DOM.
// For the answer read most often (one user's status, polled by panels and
// monitoring), where building a boost::json DOM and then serializing it cost
// more than the rest of the request. Output is compact, like
// boost::json::serialize; strings are escaped per RFC 8259 (", \ and the
// control characters; other bytes, UTF-8 included, pass through).
// Pure, not thread-safe (one writer per string).
#pragma once

#include <cassert>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace mtw::api::detail {

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& begin_object() {
    separate();
    out_ += '{';
    push();
    return *this;
  }
  JsonWriter& end_object() {
    out_ += '}';
    pop();
    return *this;
  }
  JsonWriter& begin_array() {
    separate();
    out_ += '[';
    push();
    return *this;
  }
  JsonWriter& end_array() {
    out_ += ']';
    pop();
    return *this;
  }
  // The next value belongs to `k`.
  JsonWriter& key(std::string_view k) {
    separate();
    string_text(k);
    out_ += ':';
    after_key_ = true;
    return *this;
  }
  JsonWriter& value(std::string_view s) {
    separate();
    string_text(s);
    return *this;
  }
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(bool b) {
    separate();
    out_ += b ? "true" : "false";
    return *this;
  }
  template <class T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, bool>) JsonWriter& value(T v) {
    separate();
    char buf[24];
    out_.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
    return *this;
  }
  template <class T>
  JsonWriter& value(const std::optional<T>& v) {
    return v ? value(*v) : null();
  }
  JsonWriter& null() {
    separate();
    out_ += "null";
    return *this;
  }
  // key(k).value(v) in one call.
  template <class T>
  JsonWriter& field(std::string_view k, const T& v) {
    return key(k).value(v);
  }

  // Nesting deeper than this is a programming error (the API's answers are
  // at most 3 deep), caught by an assert in debug builds: one bit per level.
  static constexpr int kMaxDepth = 63;

 private:
  // A comma before every member or element but the first of its container;
  // none right after a key.
  void separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (depth_ > 0 && (nonempty_ & (std::uint64_t{1} << depth_))) out_ += ',';
    nonempty_ |= std::uint64_t{1} << depth_;
  }
  void push() {
    assert(depth_ < kMaxDepth);
    nonempty_ &= ~(std::uint64_t{1} << ++depth_);
  }
  void pop() {
    assert(depth_ > 0);
    --depth_;
  }
  void string_text(std::string_view s);

  std::string& out_;
  std::uint64_t nonempty_ = 0;  // bit d: the container at depth d has a member
  int depth_ = 0;
  bool after_key_ = false;
};

}  // namespace mtw::api::detail
