#include "report.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <cmath>
#include <fstream>

#include "json_writer.h"

namespace vgpu::bench {
namespace {

const char* BetterName(Better better) {
  switch (better) {
    case Better::kHigher:
      return "higher";
    case Better::kLower:
      return "lower";
    case Better::kNeither:
      break;
  }
  return "neither";
}

const WorkloadResult* FindResult(const std::vector<WorkloadResult>& results,
                                 const std::string& workload, const std::string& label) {
  for (const WorkloadResult& result : results) {
    if (result.workload == workload && result.backend_label == label) return &result;
  }
  return nullptr;
}

std::string FormatValue(double value, const std::string& unit) {
  char text[64];
  if (!std::isfinite(value)) return "-";
  if (std::fabs(value) >= 100 || value == std::floor(value)) {
    std::snprintf(text, sizeof(text), "%.0f", value);
  } else if (std::fabs(value) >= 1) {
    std::snprintf(text, sizeof(text), "%.2f", value);
  } else {
    std::snprintf(text, sizeof(text), "%.3g", value);
  }
  std::string formatted = text;
  if (!unit.empty()) formatted += " " + unit;
  return formatted;
}

std::vector<std::string> WorkloadOrder(const std::vector<WorkloadResult>& results) {
  std::vector<std::string> order;
  for (const WorkloadResult& result : results) {
    bool seen = false;
    for (const std::string& name : order) seen = seen || name == result.workload;
    if (!seen) order.push_back(result.workload);
  }
  return order;
}

void PrintDetails(std::FILE* out, const WorkloadResult& result, bool labelled) {
  const std::string prefix = labelled ? "  [" + result.backend_label + "] " : "  ";
  if (!result.ok) std::fprintf(out, "%sFAILED: %s\n", prefix.c_str(), result.error.c_str());
  if (!result.skipped.empty()) {
    std::fprintf(out, "%sskipped: %s\n", prefix.c_str(), result.skipped.c_str());
  }
  for (const std::string& note : result.notes) {
    std::fprintf(out, "%snote: %s\n", prefix.c_str(), note.c_str());
  }
  for (const std::string& anomaly : result.anomalies) {
    std::fprintf(out, "%sanomaly: %s\n", prefix.c_str(), anomaly.c_str());
  }
  if (!result.backend_exit.empty()) {
    std::fprintf(out, "%sbackend %s\n", prefix.c_str(), result.backend_exit.c_str());
  }
}

void WriteResult(JsonWriter& json, const WorkloadResult& result) {
  json.BeginObject();
  json.Field("workload", result.workload);
  json.Field("backend", result.backend_label);
  json.Field("ok", result.ok);
  json.Key("error");
  if (result.ok) {
    json.Null();
  } else {
    json.String(result.error);
  }
  json.Key("skipped");
  if (result.skipped.empty()) {
    json.Null();
  } else {
    json.String(result.skipped);
  }
  json.Key("figures");
  json.BeginObject();
  for (const Figure& figure : result.figures) {
    json.Key(figure.name);
    json.BeginObject();
    json.Field("value", figure.value);
    json.Field("unit", figure.unit);
    json.Field("better", BetterName(figure.better));
    json.EndObject();
  }
  json.EndObject();
  for (const auto& [key, list] :
       {std::pair{"notes", &result.notes}, std::pair{"anomalies", &result.anomalies}}) {
    json.Key(key);
    json.BeginArray();
    for (const std::string& text : *list) json.String(text);
    json.EndArray();
  }
  json.Field("backend_exit", result.backend_exit);
  json.EndObject();
}

}  // namespace

void Report::Derive() {
  for (WorkloadResult& damage : results) {
    if (damage.workload != "damage-1080p" || !damage.ok) continue;
    const WorkloadResult* full = FindResult(results, "frame-1080p", damage.backend_label);
    if (full == nullptr || !full->ok) continue;
    // Ideal: the damaged share of the frame (0.10). Fixed per-frame costs push it up.
    for (const char* name : {"frame_time_median", "backend_cpu_per_frame"}) {
      const Figure* part = damage.Find(name);
      const Figure* whole = full->Find(name);
      if (part == nullptr || whole == nullptr || whole->value <= 0) continue;
      damage.Add(std::string(name) + "_vs_full_frame", "x", part->value / whole->value,
                 Better::kLower);
    }
  }
}

void Report::Compare() {
  ratios.clear();
  if (backends.size() < 2) return;
  for (const std::string& workload : WorkloadOrder(results)) {
    const WorkloadResult* a = FindResult(results, workload, backends[0].label);
    const WorkloadResult* b = FindResult(results, workload, backends[1].label);
    if (a == nullptr || b == nullptr || !a->ok || !b->ok) continue;
    for (const Figure& figure : a->figures) {
      const Figure* other = b->Find(figure.name);
      if (other == nullptr) continue;
      Ratio ratio{workload,     figure.name,  figure.unit,
                  figure.value, other->value, other->value != 0 ? figure.value / other->value : NAN,
                  figure.better};
      ratios.push_back(ratio);
    }
  }
}

void Report::Print(std::FILE* out) const {
  const bool compare = backends.size() >= 2;
  for (const LabelledBackend& backend : backends) {
    std::fprintf(out, "%s: %s (%s)\n", backend.label.c_str(), backend.spec.text.c_str(),
                 backend.spec.kind == BackendSpec::Kind::kCommand ? "started per workload"
                                                                  : "existing socket");
  }
  for (const std::string& workload : WorkloadOrder(results)) {
    std::fprintf(out, "\n== %s\n", workload.c_str());
    const WorkloadResult* first = FindResult(results, workload, backends[0].label);
    const WorkloadResult* second =
        compare ? FindResult(results, workload, backends[1].label) : nullptr;
    if (compare) {
      std::fprintf(out, "  %-34s %16s %16s %8s\n", "figure", backends[0].label.c_str(),
                   backends[1].label.c_str(), "A/B");
    }
    // Every figure either backend produced, in the first one's order.
    std::vector<std::string> names;
    for (const WorkloadResult* result : {first, second}) {
      if (result == nullptr) continue;
      for (const Figure& figure : result->figures) {
        bool seen = false;
        for (const std::string& name : names) seen = seen || name == figure.name;
        if (!seen) names.push_back(figure.name);
      }
    }
    for (const std::string& name : names) {
      const Figure* a = first != nullptr ? first->Find(name) : nullptr;
      const Figure* b = second != nullptr ? second->Find(name) : nullptr;
      const std::string unit = a != nullptr ? a->unit : b->unit;
      const std::string a_text = a != nullptr ? FormatValue(a->value, unit) : "-";
      if (!compare) {
        std::fprintf(out, "  %-34s %16s\n", name.c_str(), a_text.c_str());
        continue;
      }
      const std::string b_text = b != nullptr ? FormatValue(b->value, unit) : "-";
      std::string ratio_text = "-";
      if (a != nullptr && b != nullptr && b->value != 0) {
        char text[32];
        std::snprintf(text, sizeof(text), "%.3f", a->value / b->value);
        ratio_text = text;
      }
      std::fprintf(out, "  %-34s %16s %16s %8s\n", name.c_str(), a_text.c_str(), b_text.c_str(),
                   ratio_text.c_str());
    }
    for (const WorkloadResult* result : {first, second}) {
      if (result != nullptr) PrintDetails(out, *result, compare);
    }
  }
}

Result<void> Report::WriteJson(const std::string& path) const {
  JsonWriter json;
  json.BeginObject();
  json.Field("tool", "vhost-gpu-bench");
  json.Field("started_at", started_at);
  json.Key("host");
  json.BeginObject();
  utsname name{};
  uname(&name);
  json.Field("kernel", std::string(name.sysname) + " " + name.release + " " + name.machine);
  json.Field("cpus_online", static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN)));
  json.EndObject();
  json.Key("options");
  json.BeginObject();
  json.Field("duration_s", options.duration_seconds);
  json.Field("warmup_s", options.warmup_seconds);
  json.Field("backing", options.backing == BackingLayout::kPages ? "pages" : "contiguous");
  json.Field("fence_frames", options.fence_frames);
  json.Field("guest_memory_bytes", static_cast<double>(options.memory_size));
  json.Field("stream", options.stream_path);
  json.Field("instances", instances);
  json.EndObject();
  json.Key("backends");
  json.BeginArray();
  for (const LabelledBackend& backend : backends) {
    json.BeginObject();
    json.Field("label", backend.label);
    json.Field("argument", backend.spec.text);
    json.Field("kind", backend.spec.kind == BackendSpec::Kind::kCommand ? "command" : "socket");
    json.EndObject();
  }
  json.EndArray();
  json.Key("results");
  json.BeginArray();
  for (const WorkloadResult& result : results) WriteResult(json, result);
  json.EndArray();
  json.Key("instance_results");
  json.BeginArray();
  for (const WorkloadResult& result : instance_results) WriteResult(json, result);
  json.EndArray();
  json.Key("comparison");
  json.BeginArray();
  for (const Ratio& ratio : ratios) {
    json.BeginObject();
    json.Field("workload", ratio.workload);
    json.Field("figure", ratio.figure);
    json.Field("unit", ratio.unit);
    json.Field("a", ratio.a);
    json.Field("b", ratio.b);
    json.Field("a_over_b", ratio.ratio);
    json.Field("better", BetterName(ratio.better));
    json.EndObject();
  }
  json.EndArray();
  json.EndObject();
  std::ofstream file(path, std::ios::trunc);
  if (!file) return MakeSystemError("opening " + path);
  file << json.Take();
  file.close();
  if (!file) return MakeSystemError("writing " + path);
  return {};
}

}  // namespace vgpu::bench
