// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_REDIS_HISTORY_STORE_HPP
#define MALLARD_DETAIL_REDIS_HISTORY_STORE_HPP

// How the Redis backplane keeps the histories of groups with history, sans
// I/O: the two Lua scripts, the commands that run them, and what their
// replies and the numbered messages on a group's channel mean.
//
// Group G keeps two keys:
//   <prefix>history:G        a stream, one entry per message, the newest
//                            history_size kept (XADD MAXLEN ~), and with an
//                            age bound none older (XTRIM MINID ~); each entry
//                            has fields o (offset), k ('t' or 'b'), p (payload)
//   <prefix>history-meta:G   a hash: epoch, and offset (the last one given)
// One script numbers a message, appends it and publishes it on G's channel,
// atomically, so every server sees the same offsets in the same order. If
// Redis loses the keys (a restart without persistence, an eviction), the
// next publish begins a new epoch at offset 1: a client's old position is
// then never taken for one of the new history.

#include <mallard/detail/group_log.hpp>
#include <mallard/detail/redis/connection.hpp>
#include <mallard/detail/redis/envelope.hpp>
#include <mallard/group_history.hpp>

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mallard::detail {

/// KEYS: meta, stream. ARGV: channel, envelope header, payload, history_size,
/// history_age in ms (0: none), a new epoch (used when the group has none),
/// the excluded connection, the publishing server's number for the publish.
/// Returns the offset.
inline constexpr char history_publish_script[] = R"lua(
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[6]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
local kind = 't'
if string.sub(ARGV[2], 2, 2) == 'B' then kind = 'b' end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'o', offset, 'k', kind, 'p', ARGV[3])
if ARGV[5] ~= '0' then
  local now = redis.call('TIME')
  local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[5])
  if oldest > 0 then redis.call('XTRIM', KEYS[2], 'MINID', '~', oldest) end
end
redis.call('PUBLISH', ARGV[1], ARGV[2] .. offset .. ':' .. epoch .. ':' .. ARGV[7] .. ':' .. ARGV[8] .. ':' .. ARGV[3])
return offset
)lua";

/// KEYS: meta, stream. ARGV: how many of the newest entries, a new epoch
/// (used when the group has none: a client that joins an empty group learns
/// the epoch its first messages will have). Returns {epoch, last offset,
/// entries newest first}.
inline constexpr char history_read_script[] = R"lua(
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[2]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
local last = redis.call('HGET', KEYS[1], 'offset') or '0'
return {epoch, last, redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[1])}
)lua";

inline std::string history_stream_key(std::string const& prefix, std::string const& group)
{
    return prefix + "history:" + group;
}

inline std::string history_meta_key(std::string const& prefix, std::string const& group)
{
    return prefix + "history-meta:" + group;
}

/// The envelope header of a message to number: version, 'T' (text) or 'B'
/// (binary), the origin.
inline std::string numbered_header(node_id const& origin, opcode op)
{
    std::string header;
    header += envelope_version;
    header += op == opcode::binary ? 'B' : 'T';
    header.append(origin.data(), origin.size());
    return header;
}

/// The publish script for one message: `verb` EVALSHA with the loaded
/// script's `script` SHA, or EVAL with its text.
inline void append_history_publish(std::string& out, std::string_view verb,
                                   std::string_view script, std::string const& prefix, std::string const& channel,
                                   std::string const& group, node_id const& origin, opcode op,
                                   std::string_view payload, std::size_t history_size,
                                   std::chrono::milliseconds history_age,
                                   std::string_view new_epoch, std::uint64_t excluded,
                                   std::uint64_t publish_id)
{
    auto const size = std::to_string(history_size);
    auto const age = std::to_string(history_age.count());
    auto const skip = std::to_string(excluded);
    auto const id = std::to_string(publish_id);
    auto const header = numbered_header(origin, op);
    append_redis_command(out, {verb, script, "2", history_meta_key(prefix, group),
                               history_stream_key(prefix, group), channel, header, payload, size,
                               age, new_epoch, skip, id});
}

/// The read script (as append_history_publish).
inline void append_history_read(std::string& out, std::string_view verb, std::string_view script,
                                std::string const& prefix, std::string const& group,
                                std::size_t history_size, std::string_view new_epoch)
{
    auto const count = std::to_string(history_size);
    append_redis_command(out, {verb, script, "2", history_meta_key(prefix, group),
                               history_stream_key(prefix, group), count, new_epoch});
}

template <class Number>
bool parse_number(std::string_view text, Number& out) noexcept
{
    auto const [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
    return error == std::errc{} && end == text.data() + text.size() && !text.empty();
}

/// A numbered message as it comes on a channel, after the envelope header:
/// "<offset>:<epoch>:<excluded>:<publish id>:<payload>".
struct numbered_message {
    std::uint64_t offset = 0;
    std::string_view epoch;
    std::uint64_t excluded = 0;
    /// The publishing server's own number for it (see redis_backplane).
    std::uint64_t publish_id = 0;
    std::string_view payload;
};

inline std::optional<numbered_message> open_numbered(std::string_view body)
{
    std::size_t colons[4];
    std::size_t from = 0;
    for (auto& at : colons) {
        at = body.find(':', from);
        if (at == std::string_view::npos)
            return std::nullopt;
        from = at + 1;
    }
    numbered_message m;
    auto const field = [&](int i) {
        auto const begin = i == 0 ? 0 : colons[i - 1] + 1;
        return body.substr(begin, colons[i] - begin);
    };
    if (!parse_number(field(0), m.offset) || m.offset == 0 || !parse_number(field(2), m.excluded) ||
        !parse_number(field(3), m.publish_id))
        return std::nullopt;
    m.epoch = field(1);
    m.payload = body.substr(colons[3] + 1);
    return m;
}

/// What the read script answered: the group's position and the entries it
/// keeps, oldest first.
struct stored_history {
    history_position position;
    std::vector<history_entry> entries;
};

/// The read script's reply; nothing when it is not one.
inline std::optional<stored_history> parse_stored_history(redisReply const& reply)
{
    if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 3 ||
        reply.element[2]->type != REDIS_REPLY_ARRAY)
        return std::nullopt;
    stored_history stored;
    stored.position.epoch = std::string(reply_text(*reply.element[0]));
    auto const& last = *reply.element[1];
    if (last.type == REDIS_REPLY_INTEGER)
        stored.position.offset = static_cast<std::uint64_t>(last.integer);
    else if (!parse_number(reply_text(last), stored.position.offset))
        return std::nullopt;
    auto const& entries = *reply.element[2];
    for (std::size_t i = entries.elements; i-- > 0;) { // newest first: reversed
        auto const& entry = *entries.element[i];
        if (entry.type != REDIS_REPLY_ARRAY || entry.elements != 2 ||
            entry.element[1]->type != REDIS_REPLY_ARRAY)
            return std::nullopt;
        history_entry kept;
        // The stream id is "<milliseconds>-<sequence>": when it was added.
        auto const id = reply_text(*entry.element[0]);
        std::uint64_t millis = 0;
        if (!parse_number(id.substr(0, id.find('-')), millis))
            return std::nullopt;
        kept.time = std::chrono::system_clock::time_point(std::chrono::milliseconds(millis));
        auto const& fields = *entry.element[1];
        for (std::size_t f = 0; f + 1 < fields.elements; f += 2) {
            auto const name = reply_text(*fields.element[f]);
            auto const value = reply_text(*fields.element[f + 1]);
            if (name == "o" && !parse_number(value, kept.offset))
                return std::nullopt;
            if (name == "k")
                kept.op = value == "b" ? opcode::binary : opcode::text;
            if (name == "p")
                kept.payload = std::make_shared<std::string const>(value);
        }
        if (kept.offset == 0 || !kept.payload)
            return std::nullopt;
        stored.entries.push_back(std::move(kept));
    }
    return stored;
}

/// What a member joining from `from` gets from `stored`, with messages older
/// than `max_age` (0: no bound) at `now` forgotten as the store would.
inline join_result recover_from(stored_history stored, since const& from,
                                std::chrono::milliseconds max_age,
                                std::chrono::system_clock::time_point now)
{
    if (max_age.count() != 0)
        std::erase_if(stored.entries, [&](auto const& e) { return now - e.time > max_age; });
    auto const first_kept =
        stored.entries.empty() ? stored.position.offset + 1 : stored.entries.front().offset;
    auto const decision =
        decide_recovery(from, stored.position.epoch, first_kept, stored.position.offset);
    join_result result;
    result.recovered = decision.recovered && !stored.position.epoch.empty();
    result.position = std::move(stored.position);
    for (auto& e : stored.entries)
        if (e.offset > decision.after)
            result.messages.push_back(std::move(e));
    return result;
}

} // namespace mallard::detail

#endif
