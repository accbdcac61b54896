// A minimal streaming JSON writer (RFC 8259) for the benchmark's result file: objects, arrays,
// strings, numbers (non-finite ones become null), booleans. Indented two spaces.
//
//   JsonWriter json;
//   json.BeginObject();
//   json.Field("tool", "vhost-gpu-bench");
//   json.Field("frames", 120.0);
//   json.EndObject();
//   std::string text = json.Take();
#pragma once

#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace vgpu::bench {

class JsonWriter {
 public:
  void BeginObject() { Open('{'); }
  void EndObject() { Close('}'); }
  void BeginArray() { Open('['); }
  void EndArray() { Close(']'); }
  void Key(std::string_view key);
  void String(std::string_view value);
  void Number(double value);
  void Bool(bool value);
  void Null();
  // Key and value in one call. A string literal must not become a bool (a pointer converts to
  // bool before it converts to string_view), hence its own overload.
  void Field(std::string_view key, std::string_view value) {
    Key(key);
    String(value);
  }
  void Field(std::string_view key, const char* value) { Field(key, std::string_view(value)); }
  void Field(std::string_view key, bool value) {
    Key(key);
    Bool(value);
  }
  template <class Number>
  requires(std::is_arithmetic_v<Number> &&
           !std::is_same_v<Number, bool>) void Field(std::string_view key, Number value) {
    Key(key);
    this->Number(static_cast<double>(value));
  }

  std::string Take() { return std::move(text_); }

 private:
  struct Level {
    bool empty = true;
  };
  void BeforeValue();
  void Open(char bracket);
  void Close(char bracket);
  void NewLine();
  void AppendQuoted(std::string_view value);

  std::string text_;
  std::vector<Level> levels_;
  bool after_key_ = false;
};

}  // namespace vgpu::bench
