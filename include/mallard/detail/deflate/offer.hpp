// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_DEFLATE_OFFER_HPP
#define MALLARD_DETAIL_DEFLATE_OFFER_HPP

// Which permessage-deflate offer to accept (RFC 7692 section 7.1), decided
// before Beast sees the request. Beast 1.81 negotiates most offers well but
// loses a parameter without a value when another list element follows,
// answers server_max_window_bits=8 with 9 (zlib has no 8-bit raw deflate),
// and accepts server_max_window_bits=15 without repeating it. So we parse
// the offers ourselves, hand Beast the one offer we accept in a plain form
// it reads correctly (or none, to decline), and repeat
// server_max_window_bits=15 in the answer where Beast leaves it out.

#include <mallard/detail/config.hpp>
#include <mallard/options.hpp>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>

#include <algorithm>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mallard::detail {

/// One element of a Sec-WebSocket-Extensions list: `name; p1; p2=value`.
struct extension_element {
    std::string name;
    struct parameter {
        std::string name;
        std::optional<std::string> value; // unquoted
    };
    std::vector<parameter> parameters;
};

/// Reads an extension list (RFC 6455 section 9.1, RFC 7230 list and
/// quoted-string rules). A malformed element is left out: it cannot be
/// accepted, and the elements after it may still be.
class extension_list_parser {
public:
    explicit extension_list_parser(std::string_view text) : text_(text) {}

    std::vector<extension_element> parse()
    {
        std::vector<extension_element> elements;
        while (skip_space(), at_ < text_.size()) {
            if (text_[at_] == ',') { // empty list elements are allowed
                ++at_;
                continue;
            }
            extension_element element;
            if (read_element(element))
                elements.push_back(std::move(element));
            else
                skip_to_next_element();
        }
        return elements;
    }

private:
    bool read_element(extension_element& element)
    {
        element.name = read_token();
        if (element.name.empty())
            return false;
        for (;;) {
            skip_space();
            if (at_ == text_.size() || text_[at_] == ',') {
                if (at_ < text_.size())
                    ++at_;
                return true;
            }
            if (text_[at_] != ';')
                return false;
            ++at_;
            skip_space();
            extension_element::parameter parameter{read_token(), std::nullopt};
            if (parameter.name.empty())
                return false;
            skip_space();
            if (at_ < text_.size() && text_[at_] == '=') {
                ++at_;
                skip_space();
                auto value = at_ < text_.size() && text_[at_] == '"' ? read_quoted() : read_token();
                if (!value || value->empty())
                    return false;
                parameter.value = std::move(*value);
            }
            element.parameters.push_back(std::move(parameter));
        }
    }

    std::string read_token()
    {
        auto const start = at_;
        while (at_ < text_.size() && is_http_token(text_.substr(at_, 1)))
            ++at_;
        return std::string(text_.substr(start, at_ - start));
    }

    // A quoted-string, without its quotes and escapes; nothing when unterminated.
    std::optional<std::string> read_quoted()
    {
        std::string value;
        for (++at_; at_ < text_.size(); ++at_) {
            char c = text_[at_];
            if (c == '"') {
                ++at_;
                return value;
            }
            if (c == '\\') {
                if (++at_ == text_.size())
                    return std::nullopt;
                c = text_[at_];
            }
            value += c;
        }
        return std::nullopt;
    }

    void skip_space()
    {
        while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\t'))
            ++at_;
    }

    void skip_to_next_element()
    {
        bool quoted = false;
        for (; at_ < text_.size(); ++at_) {
            if (quoted && text_[at_] == '\\')
                ++at_;
            else if (text_[at_] == '"')
                quoted = !quoted;
            else if (!quoted && text_[at_] == ',') {
                ++at_;
                return;
            }
        }
    }

    std::string_view text_;
    std::size_t at_ = 0;
};

/// The permessage-deflate offer we accept, in the plain form we hand Beast.
struct deflate_acceptance {
    std::string offer;
    /// The offer had server_max_window_bits=15: the answer must repeat it.
    bool repeat_server_window_15 = false;
};

// A window size of 8 to 15 bits, without leading zeros (RFC 7692 7.1.2).
inline bool is_window_bits(std::string_view value)
{
    return value == "8" || value == "9" ||
           (value.size() == 2 && value[0] == '1' && value[1] >= '0' && value[1] <= '5');
}

/// The first permessage-deflate offer we can honour as offered, or nothing
/// to decline. An offer with an unknown parameter, a bad value or a repeated
/// parameter must be declined (RFC 7692 section 7.1); one asking for an
/// 8-bit server window cannot be honoured with zlib and is declined too.
inline std::optional<deflate_acceptance> choose_deflate_offer(
    http::request<http::empty_body> const& upgrade)
{
    std::vector<extension_element> offers;
    auto const [first, last] = upgrade.equal_range(http::field::sec_websocket_extensions);
    for (auto field = first; field != last; ++field) {
        auto const value = field->value();
        auto parsed = extension_list_parser({value.data(), value.size()}).parse();
        offers.insert(offers.end(), std::make_move_iterator(parsed.begin()),
                      std::make_move_iterator(parsed.end()));
    }
    for (auto const& offer : offers) {
        if (!beast::iequals(offer.name, "permessage-deflate"))
            continue;
        deflate_acceptance accepted{"permessage-deflate", false};
        std::vector<std::string_view> seen;
        bool acceptable = true;
        for (auto const& p : offer.parameters) {
            bool const repeated = std::find_if(seen.begin(), seen.end(), [&](auto name) {
                                      return beast::iequals(name, p.name);
                                  }) != seen.end();
            seen.push_back(p.name);
            bool const flag = beast::iequals(p.name, "server_no_context_takeover") ||
                              beast::iequals(p.name, "client_no_context_takeover");
            bool const server_bits = beast::iequals(p.name, "server_max_window_bits");
            bool const client_bits = beast::iequals(p.name, "client_max_window_bits");
            if (repeated || (flag && p.value) ||
                (server_bits && (!p.value || !is_window_bits(*p.value) || *p.value == "8")) ||
                (client_bits && p.value && !is_window_bits(*p.value)) ||
                (!flag && !server_bits && !client_bits)) {
                acceptable = false;
                break;
            }
            accepted.offer += "; " + p.name;
            if (p.value)
                accepted.offer += "=" + *p.value;
            if (server_bits && *p.value == "15")
                accepted.repeat_server_window_15 = true;
        }
        if (acceptable)
            return accepted;
    }
    return std::nullopt;
}

/// Adds server_max_window_bits=15 to an accepting answer that left it out.
inline void repeat_server_window_15(http::response_header<>& answer)
{
    auto const value = answer[http::field::sec_websocket_extensions];
    if (value.starts_with("permessage-deflate") &&
        value.find("server_max_window_bits") == beast::string_view::npos)
        answer.set(http::field::sec_websocket_extensions,
                   std::string(value) + "; server_max_window_bits=15");
}

/// Whether an answer to an upgrade agrees to permessage-deflate.
inline bool accepts_deflate(http::response_header<> const& answer)
{
    if (answer.result() != http::status::switching_protocols)
        return false;
    auto const value = answer[http::field::sec_websocket_extensions];
    return value == "permessage-deflate" || value.starts_with("permessage-deflate;");
}

} // namespace mallard::detail

#endif
