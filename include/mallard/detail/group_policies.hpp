// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_GROUP_POLICIES_HPP
#define MALLARD_DETAIL_GROUP_POLICIES_HPP

// The server's group policies (`server_options::groups`), checked once and
// matched against group names.

#include <mallard/group_policy.hpp>

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mallard::detail {

/// Whether `name` is a group `pattern` covers: the name itself, or any
/// name starting with what comes before a final `*`.
inline bool group_pattern_matches(std::string_view pattern, std::string_view name) noexcept
{
    if (!pattern.empty() && pattern.back() == '*')
        return name.starts_with(pattern.substr(0, pattern.size() - 1));
    return name == pattern;
}

/// @throws std::invalid_argument naming the policy and what to fix.
inline void check_group_policy(group_policy const& policy)
{
    auto const fail = [&](std::string const& what) {
        throw std::invalid_argument("mallard::server_options::groups: the policy for \"" +
                                    policy.pattern + "\" " + what);
    };
    if (policy.pattern.empty())
        throw std::invalid_argument("mallard::server_options::groups: a policy has an empty "
                                    "pattern; give a group name, or a prefix ending in '*'");
    if (auto const star = policy.pattern.find('*');
        star != std::string::npos && star + 1 != policy.pattern.size())
        fail("has a '*' before its end; only one final '*' is supported (\"room:*\")");
    if (policy.history_age.count() < 0)
        fail("has a negative history_age");
    if (policy.history_size == 0 && policy.history_age.count() != 0)
        fail("sets history_age without history_size; set how many messages to keep");
    if (policy.history_size == 0 && policy.format)
        fail("sets format without history_size; format adds offsets, which need a history");
    if (!policy.presence && policy.presence_messages)
        fail("sets presence_messages without presence = true");
}

class group_policies {
public:
    group_policies() = default;

    /// @throws std::invalid_argument for a policy that cannot work.
    explicit group_policies(std::vector<group_policy> policies) : policies_(std::move(policies))
    {
        for (auto const& policy : policies_)
            check_group_policy(policy);
    }

    /// The policy of group `name`: the first that matches; null for none.
    group_policy const* find(std::string_view name) const noexcept
    {
        for (auto const& policy : policies_)
            if (group_pattern_matches(policy.pattern, name))
                return &policy;
        return nullptr;
    }

    bool empty() const noexcept { return policies_.empty(); }

private:
    std::vector<group_policy> policies_;
};

} // namespace mallard::detail

#endif
