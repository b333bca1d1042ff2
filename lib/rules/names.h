// Internal to lib/rules: the name tables of the language (services, port classes, protocols, ICMP
// types, TCP flags) and the numeric/address atoms shared by the rule parser and the flow parser.
// Not a public header: the tables may change with the language.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "rules/match.h"

namespace portcullis::rules::detail {

// Built-in service names; `extra` (from a services file) is consulted after them.
std::optional<uint16_t> lookup_service(std::string_view name,
                                       const std::unordered_map<std::string, uint16_t>* extra);
// name -> port from an /etc/services-format file; empty when the file cannot be read.
std::unordered_map<std::string, uint16_t> load_services_file(const std::string& path);

std::optional<value_range<uint16_t>> lookup_port_class(std::string_view name);
std::optional<uint8_t> lookup_protocol(std::string_view name);
std::string protocol_name(uint8_t proto);  // "tcp", or the number
// ICMP type names differ between ICMP (v6 = false) and ICMPv6.
std::optional<uint8_t> lookup_icmp_type(std::string_view name, bool v6);

// Decimal without sign or leading junk; nullopt when not all digits or above max.
std::optional<uint32_t> parse_number(std::string_view s, uint32_t max);
// Parses "F S R P A U E W" letters (any order); nullopt on an unknown letter.
std::optional<uint8_t> parse_tcp_flags(std::string_view s);
std::string format_tcp_flags(uint8_t f);

std::optional<uint32_t> parse_ipv4(std::string_view s);
std::optional<u128> parse_ipv6(std::string_view s);

} // namespace portcullis::rules::detail
