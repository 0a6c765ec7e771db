// SPDX-License-Identifier: BSL-1.0
// The game's rules, without I/O: players on an arena, moved by the keys they
// hold, one step per tick; and the binary formats of inputs and snapshots.
// The server owns every position (clients only say which keys are down), so
// every client sees the same game.

#ifndef MALLARD_EXAMPLES_GAME_ARENA_HPP
#define MALLARD_EXAMPLES_GAME_ARENA_HPP

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace game {

constexpr int arena_width = 800;  // units; the page scales them to its canvas
constexpr int arena_height = 500;
constexpr double speed = 240; // units per second

/// The keys a player holds: one byte, the client's input message.
enum input_bits : std::uint8_t { up = 1, down = 2, left = 4, right = 8 };
constexpr std::uint8_t all_inputs = up | down | left | right;

/// The keys in a client's input message, if it is one: exactly one byte,
/// no bit but the four keys'.
inline std::optional<std::uint8_t> parse_input(std::string_view message)
{
    if (message.size() != 1)
        return std::nullopt;
    auto const bits = static_cast<std::uint8_t>(message[0]);
    if ((bits & ~all_inputs) != 0)
        return std::nullopt;
    return bits;
}

struct player {
    double x = 0, y = 0;
    std::uint8_t input = 0;
};

/// Every player of one room, by id.
class arena {
public:
    /// Adds player `id` at a starting place of its own.
    void add(std::uint32_t id)
    {
        // Spread over the arena by a fixed pattern, away from the walls.
        auto const spot = (id * 2654435761u) >> 8;
        players_[id] = {40.0 + static_cast<double>(spot % (arena_width - 80)),
                        40.0 + static_cast<double>((spot / arena_width) % (arena_height - 80)), 0};
    }

    void remove(std::uint32_t id) { players_.erase(id); }
    bool empty() const noexcept { return players_.empty(); }
    std::size_t size() const noexcept { return players_.size(); }

    void set_input(std::uint32_t id, std::uint8_t input)
    {
        if (auto found = players_.find(id); found != players_.end())
            found->second.input = input;
    }

    /// Moves every player by `seconds` of its held keys, within the walls.
    void step(double seconds)
    {
        for (auto& [id, p] : players_) {
            double dx = ((p.input & right) ? 1 : 0) - ((p.input & left) ? 1 : 0);
            double dy = ((p.input & down) ? 1 : 0) - ((p.input & up) ? 1 : 0);
            if (dx != 0 && dy != 0) { // diagonals no faster than straight lines
                dx *= std::sqrt(0.5);
                dy *= std::sqrt(0.5);
            }
            p.x = std::clamp(p.x + dx * speed * seconds, 0.0, double{arena_width});
            p.y = std::clamp(p.y + dy * speed * seconds, 0.0, double{arena_height});
        }
    }

    /** The state as a binary snapshot, little-endian:
        uint8 kind (1), uint32 tick, uint16 count, then per player
        uint32 id, uint16 x, uint16 y (whole units): 7 + 8 bytes per player. */
    std::string snapshot(std::uint32_t tick) const
    {
        std::string out;
        out.reserve(7 + 8 * players_.size());
        out += char{1};
        put(out, tick, 4);
        put(out, static_cast<std::uint32_t>(std::min<std::size_t>(players_.size(), 0xFFFF)), 2);
        std::size_t written = 0;
        for (auto const& [id, p] : players_) {
            if (written++ == 0xFFFF)
                break;
            put(out, id, 4);
            put(out, static_cast<std::uint32_t>(std::lround(p.x)), 2);
            put(out, static_cast<std::uint32_t>(std::lround(p.y)), 2);
        }
        return out;
    }

private:
    static void put(std::string& out, std::uint32_t value, int bytes)
    {
        for (int i = 0; i < bytes; ++i)
            out += static_cast<char>((value >> (8 * i)) & 0xFF);
    }

    std::map<std::uint32_t, player> players_;
};

} // namespace game

#endif
