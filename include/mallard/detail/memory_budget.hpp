// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_MEMORY_BUDGET_HPP
#define MALLARD_DETAIL_MEMORY_BUDGET_HPP

// What a server thread does about the memory its connections hold
// (server_options::memory_budget). No I/O: the worker takes a look a few
// times a second (worker::check_memory) and carries the answer out.
//
// Counted is what a peer can make us hold: the message read so far, the
// messages queued for it, and the bytes gathered for its next write. Over
// the thread's share of the budget, reading pauses on every connection
// holding at least `pause_floor` (those holding the most; below it, a small
// message being read or a reply or two queued, connections read on): what a
// paused connection has read cannot grow, and TCP pushes back on its peer.
// (Between two looks the session asks before each read, see
// worker::pause_before_read, so a fast upload cannot run far past the
// budget.) Those still paused after `timeout` while the thread is still
// over are closed (1013, try again later), most first, just enough to
// cover the excess; what closing connections hold counts as covered
// already. Back within the share, every paused connection reads again.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <numeric>
#include <vector>

namespace mallard::detail {

/// Connections holding less than this read on over the budget: a small
/// message being read, or a reply or two queued, is not what fills memory.
constexpr std::size_t memory_pause_floor = 64 * 1024;

/// One connection, as the budget sees it.
struct memory_holder {
    std::size_t bytes = 0; ///< held now
    bool paused = false;   ///< its reading is paused by the budget
    bool closing = false;  ///< its memory goes with it soon: never paused or closed
    std::chrono::steady_clock::time_point paused_since{};
};

/// What to do; each list holds indices into the holders looked at.
struct memory_actions {
    std::vector<std::size_t> pause;  ///< reading paused from now
    std::vector<std::size_t> resume; ///< reading again
    std::vector<std::size_t> close;  ///< over for too long: close with 1013
    std::size_t total = 0;           ///< bytes held by all of them
};

inline memory_actions decide_memory(std::vector<memory_holder> const& holders, std::size_t share,
                                    std::size_t pause_floor,
                                    std::chrono::steady_clock::time_point now,
                                    std::chrono::steady_clock::duration timeout)
{
    memory_actions actions;
    for (auto const& holder : holders)
        actions.total += holder.bytes;
    if (actions.total <= share) {
        for (std::size_t i = 0; i < holders.size(); ++i)
            if (holders[i].paused)
                actions.resume.push_back(i);
        return actions;
    }
    auto const excess = actions.total - share;
    std::size_t closing = 0;
    for (std::size_t i = 0; i < holders.size(); ++i) {
        auto const& holder = holders[i];
        if (holder.closing)
            closing += holder.bytes;
        else if (!holder.paused && holder.bytes >= pause_floor)
            actions.pause.push_back(i);
    }
    std::vector<std::size_t> most_first(holders.size());
    std::iota(most_first.begin(), most_first.end(), std::size_t{0});
    std::stable_sort(most_first.begin(), most_first.end(), [&](std::size_t a, std::size_t b) {
        return holders[a].bytes > holders[b].bytes;
    });
    std::size_t freed = closing;
    for (auto const i : most_first) {
        if (freed >= excess)
            break;
        if (holders[i].paused && !holders[i].closing &&
            now - holders[i].paused_since >= timeout) {
            actions.close.push_back(i);
            freed += holders[i].bytes;
        }
    }
    return actions;
}

} // namespace mallard::detail

#endif
