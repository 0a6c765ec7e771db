// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_REDIS_PRESENCE_STORE_HPP
#define MALLARD_DETAIL_REDIS_PRESENCE_STORE_HPP

// How the Redis backplane keeps the presence lists of groups with presence,
// sans I/O: the Lua scripts and what their replies mean.
//
//   <prefix>presence:G   a hash: "<node>:<connection>" -> the member's info,
//                        every member of G on every server
//   <prefix>node:N       exists while server N is alive: each server renews
//                        its own every presence_heartbeat, for three times
//                        as long
// A join adds the member and announces it on G's channel ('j'), and answers
// the whole list; a leave removes it and announces that ('l'). Every
// heartbeat each server sweeps the lists of its groups: a member whose
// server's key has expired is removed and its leave announced, once (the
// removal decides who announces), with the dead server as the origin.

#include <mallard/detail/redis/connection.hpp>
#include <mallard/detail/redis/envelope.hpp>
#include <mallard/presence.hpp>

#include <hiredis/hiredis.h>

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mallard::detail {

/// KEYS: the list. ARGV: the member's field, its info, the channel, the 'j'
/// envelope, the server's node key, its time to live in ms. Returns the
/// list (HGETALL).
inline constexpr char presence_join_script[] = R"lua(
redis.call('SET', ARGV[5], '1', 'PX', ARGV[6])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return redis.call('HGETALL', KEYS[1])
)lua";

/// KEYS: the list. ARGV: the member's field, the channel, the 'l' envelope.
inline constexpr char presence_leave_script[] = R"lua(
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return 0
)lua";

/// KEYS: the list. ARGV: the node key prefix, the channel, the envelope
/// version byte. Removes the members of servers whose key has expired and
/// announces each leave as its own server would have.
inline constexpr char presence_sweep_script[] = R"lua(
local removed = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  local sep = string.find(field, ':', 1, true)
  if sep then
    local node = string.sub(field, 1, sep - 1)
    if redis.call('EXISTS', ARGV[1] .. node) == 0 then
      local info = redis.call('HGET', KEYS[1], field) or ''
      redis.call('HDEL', KEYS[1], field)
      local raw = (string.gsub(node, '..', function(h) return string.char(tonumber(h, 16)) end))
      redis.call('PUBLISH', ARGV[2], ARGV[3] .. 'l' .. raw .. string.sub(field, sep + 1) .. ':' .. info)
      removed = removed + 1
    end
  end
end
return removed
)lua";

inline std::string presence_key(std::string const& prefix, std::string const& group)
{
    return prefix + "presence:" + group;
}

inline std::string node_key(std::string const& prefix, std::string_view node)
{
    return prefix + "node:" + std::string(node);
}

/// A member's field in the list: "<node>:<connection>".
inline std::string presence_field(std::string_view node, std::uint64_t connection)
{
    return std::string(node) + ":" + std::to_string(connection);
}

/// The members of a list as HGETALL answers it; nothing when it is not one.
/// Members whose server is `own` are left out: a server knows its own.
inline std::optional<std::vector<presence_member>> parse_presence_list(redisReply const& reply,
                                                                       std::string_view own)
{
    if (reply.type != REDIS_REPLY_ARRAY || reply.elements % 2 != 0)
        return std::nullopt;
    std::vector<presence_member> members;
    for (std::size_t i = 0; i + 1 < reply.elements; i += 2) {
        auto const field = reply_text(*reply.element[i]);
        auto const colon = field.find(':');
        if (colon == std::string_view::npos)
            return std::nullopt;
        presence_member member;
        member.server = std::string(field.substr(0, colon));
        auto const digits = field.substr(colon + 1);
        auto const [end, error] =
            std::from_chars(digits.data(), digits.data() + digits.size(), member.connection);
        if (error != std::errc{} || end != digits.data() + digits.size())
            return std::nullopt;
        if (member.server == own)
            continue;
        member.info = std::string(reply_text(*reply.element[i + 1]));
        members.push_back(std::move(member));
    }
    return members;
}

} // namespace mallard::detail

#endif
