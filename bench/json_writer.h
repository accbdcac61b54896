// A minimal streaming JSON writer (RFC 8259) for the benchmark's result file: objects, arrays,
// strings, numbers (non-finite ones become null), booleans. Indented two spaces.
//
//   JsonWriter json;
//   json.BeginObject();
//   json.Key("tool"); json.String("vhost-gpu-bench");
//   json.Key("frames"); json.Number(120);
//   json.EndObject();
//   std::string text = json.Take();
#pragma once

#include <string>
#include <string_view>
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
