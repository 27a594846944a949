#pragma once
// The control socket protocol, shared by luaflowd and luaflowctl (and documented in luaflowctl(1)).
//
// A client connects to the Unix stream socket and writes requests, one JSON object per line:
//     {"id": 1, "method": "inspect", "params": {"execution": "01j9..."}}
// `id` is any JSON value the client chooses; it is echoed. The daemon answers each request with
// exactly one final line, in request order per connection:
//     {"id": 1, "result": <JSON>}
//     {"id": 1, "error": {"code": "not_found", "message": "no execution '01j9'"}}
// Streaming methods (logs with stream or follow) first send zero or more event lines:
//     {"id": 1, "event": <JSON>}
// and then the final result line. Error codes: "invalid" (bad request or input), "not_found",
// "conflict" (e.g. already finished), "unavailable" (shutting down), "internal".
// A line that is not JSON, or lacks "method", gets {"id": null, "error": {"code": "invalid", ...}};
// the connection stays open. Lines longer than 16 MiB close the connection (luaflowctl refuses to send one).
//
// clang-format off
// Methods (params; result):
//   status     {}                                    -> {"version","uptime_s","workflows","workflow_errors","running","queued"}
//   list       {}                                    -> [{"id","enabled","status","error","schedule","next_run","last_execution"}]
//   show       {"workflow"}                          -> the workflow's description (see luaflowctl(1))
//   run        {"workflow","input"?,"input_strings"?,"wait"?}
//                                                    -> {"id"}; with wait: the inspect document once it ends
//   executions {"workflow"?,"status"?,"limit"?}      -> [{"id","workflow","status","trigger","created_at","started_at","finished_at"}];
//                                                       not_found for a workflow that neither exists nor has executions
//   inspect    {"execution"}                         -> the inspect document (SPEC 6)
//   wait       {"execution"}                         -> the inspect document once the execution has ended
//   logs       {"execution","action"?,"follow"?,"stream"?,"limit"?}
//                                                    -> [{"time","action","attempt","stream","line"}];
//              with stream: one event per line (the same objects), then {"lines": N, "limited": bool}, limited
//              when `limit` (stream or follow only) left lines out; with follow the same, and new lines as they
//              are committed until the execution ends. Sent a page at a time, the next once the last is
//              written (backpressure). not_found for an action the execution does not have
//   cancel     {"execution"}                         -> {"id","status"}
//   retry      {"execution"}                         -> {"id","status"}
//   enable     {"workflow"} / disable {"workflow"}   -> {"id","enabled"}
//   next       {"workflow","n"?,"after"?}            -> ["2026-11-22T10:00:00+01:00", ...]
//   reload     {}                                    -> {"workflows": N, "errors": [{"file","line","message"}]}
//   kv_get     {"key","workflow"?}                   -> {"key","value"}; not_found for a missing key
//   kv_set     {"key","value","workflow"?}           -> {"key","value"}
//   kv_delete  {"key","workflow"?}                   -> {"key","deleted": true}; not_found for a missing key
//   kv_list    {"workflow"?}                         -> [{"key","value","updated_at"}]
//              without "workflow": kv.global; with it: that workflow's kv (not_found for an unknown one)
//   stats      {}                                    -> internal counters for bench/: {"commits", ...}
// clang-format on
// An execution may be named by a unique prefix of its id.
#include <string_view>

namespace luaflow::protocol {

inline constexpr const char* kDefaultSocket = "/run/luaflow/luaflowd.sock";
// The longest request line; luaflowctl reads input files up to this size.
inline constexpr std::size_t kMaxLine = 16u << 20;
// A request nested deeper than this is refused on the control socket (SPEC 3: 128 levels).
inline constexpr std::size_t kMaxJsonDepth = 128;

} // namespace luaflow::protocol
