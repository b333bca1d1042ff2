// The language's name tables (services, port classes, protocols, ICMP types, TCP flags) and atoms (names.h).
#include "rules/names.h"

#include <arpa/inet.h>

#include <array>
#include <cctype>
#include <fstream>
#include <sstream>
#include <utility>

namespace portcullis::rules::detail {
namespace {

struct named_value {
	std::string_view name;
	uint16_t value;
};

// The built-in table: the services a gateway's rules name most, so that rule files mean the same on
// every host whatever its /etc/services says (the built-in entry wins on conflict).
constexpr std::array builtin_services{
	named_value{"ftp-data", 20},    named_value{"ftp", 21},          named_value{"ssh", 22},
	named_value{"telnet", 23},      named_value{"smtp", 25},         named_value{"domain", 53},
	named_value{"dns", 53},         named_value{"bootps", 67},       named_value{"bootpc", 68},
	named_value{"tftp", 69},        named_value{"http", 80},         named_value{"kerberos", 88},
	named_value{"pop3", 110},       named_value{"ntp", 123},         named_value{"imap", 143},
	named_value{"snmp", 161},       named_value{"snmp-trap", 162},   named_value{"bgp", 179},
	named_value{"ldap", 389},       named_value{"https", 443},       named_value{"smb", 445},
	named_value{"ike", 500},        named_value{"syslog", 514},      named_value{"submission", 587},
	named_value{"ldaps", 636},      named_value{"imaps", 993},       named_value{"pop3s", 995},
	named_value{"openvpn", 1194},   named_value{"mssql", 1433},      named_value{"radius", 1812},
	named_value{"nfs", 2049},       named_value{"mysql", 3306},      named_value{"rdp", 3389},
	named_value{"ipsec-nat-t", 4500}, named_value{"sip", 5060},      named_value{"postgresql", 5432},
	named_value{"amqp", 5672},      named_value{"redis", 6379},      named_value{"http-alt", 8080},
	named_value{"wireguard", 51820},
};

constexpr std::array port_classes{
	std::pair<std::string_view, value_range<uint16_t>>{"well-known", {0, 1023}},
	std::pair<std::string_view, value_range<uint16_t>>{"registered", {1024, 49151}},
	std::pair<std::string_view, value_range<uint16_t>>{"dynamic", {49152, 65535}},
};

constexpr std::array protocols{
	named_value{"icmp", 1},  named_value{"igmp", 2},  named_value{"tcp", 6},
	named_value{"udp", 17},  named_value{"gre", 47},  named_value{"esp", 50},
	named_value{"ah", 51},   named_value{"icmp6", 58}, named_value{"ipv6-icmp", 58},
	named_value{"ospf", 89}, named_value{"sctp", 132},
};

constexpr std::array icmp4_types{
	named_value{"echo-reply", 0},        named_value{"dest-unreachable", 3},
	named_value{"source-quench", 4},     named_value{"redirect", 5},
	named_value{"echo-request", 8},      named_value{"router-advertisement", 9},
	named_value{"router-solicitation", 10}, named_value{"time-exceeded", 11},
	named_value{"param-problem", 12},    named_value{"timestamp-request", 13},
	named_value{"timestamp-reply", 14},
};

constexpr std::array icmp6_types{
	named_value{"dest-unreachable", 1},  named_value{"packet-too-big", 2},
	named_value{"time-exceeded", 3},     named_value{"param-problem", 4},
	named_value{"echo-request", 128},    named_value{"echo-reply", 129},
	named_value{"router-solicitation", 133}, named_value{"router-advertisement", 134},
	named_value{"neighbor-solicitation", 135}, named_value{"neighbor-advertisement", 136},
	named_value{"redirect", 137},
};

template <class Table>
std::optional<uint16_t> find(const Table& t, std::string_view name)
{
	for (const auto& e : t)
		if (e.name == name)
			return e.value;
	return std::nullopt;
}

} // namespace

std::optional<uint16_t> lookup_service(std::string_view name,
                                       const std::unordered_map<std::string, uint16_t>* extra)
{
	if (auto v = find(builtin_services, name))
		return v;
	if (extra) {
		auto it = extra->find(std::string(name));
		if (it != extra->end())
			return it->second;
	}
	return std::nullopt;
}

std::unordered_map<std::string, uint16_t> load_services_file(const std::string& path)
{
	std::unordered_map<std::string, uint16_t> out;
	if (path.empty())
		return out;
	std::ifstream in(path);
	std::string line;
	while (std::getline(in, line)) {
		if (auto hash = line.find('#'); hash != std::string::npos)
			line.resize(hash);
		std::istringstream words(line);
		std::string name, port_proto;
		if (!(words >> name >> port_proto))
			continue;
		const auto slash = port_proto.find('/');
		const auto port = parse_number(std::string_view(port_proto).substr(0, slash), 65535);
		if (!port)
			continue;
		// First entry wins (tcp and udp lines usually agree); aliases name the same port.
		out.emplace(name, uint16_t(*port));
		std::string alias;
		while (words >> alias)
			out.emplace(alias, uint16_t(*port));
	}
	return out;
}

std::optional<value_range<uint16_t>> lookup_port_class(std::string_view name)
{
	for (const auto& [n, r] : port_classes)
		if (n == name)
			return r;
	return std::nullopt;
}

std::optional<uint8_t> lookup_protocol(std::string_view name)
{
	if (auto v = find(protocols, name))
		return uint8_t(*v);
	return std::nullopt;
}

std::string protocol_name(uint8_t proto)
{
	for (const auto& e : protocols)
		if (e.value == proto)
			return std::string(e.name);
	return std::to_string(proto);
}

std::optional<uint8_t> lookup_icmp_type(std::string_view name, bool v6)
{
	if (auto v = v6 ? find(icmp6_types, name) : find(icmp4_types, name))
		return uint8_t(*v);
	return std::nullopt;
}

std::optional<uint32_t> parse_number(std::string_view s, uint32_t max)
{
	if (s.empty() || s.size() > 10)
		return std::nullopt;
	uint64_t v = 0;
	for (char c : s) {
		if (c < '0' || c > '9')
			return std::nullopt;
		v = v * 10 + uint64_t(c - '0');
	}
	if (v > max)
		return std::nullopt;
	return uint32_t(v);
}

namespace {
constexpr std::string_view flag_letters = "FSRPAUEW";  // bit 0 (FIN) .. bit 7 (CWR)
}

std::optional<uint8_t> parse_tcp_flags(std::string_view s)
{
	uint8_t f = 0;
	for (char c : s) {
		const auto bit = flag_letters.find(char(std::toupper(static_cast<unsigned char>(c))));
		if (bit == std::string_view::npos)
			return std::nullopt;
		f |= uint8_t(1u << bit);
	}
	return f;
}

std::string format_tcp_flags(uint8_t f)
{
	std::string s;
	for (size_t bit = 0; bit < flag_letters.size(); ++bit)
		if (f & (1u << bit))
			s += flag_letters[bit];
	return s.empty() ? "none" : s;
}

std::optional<uint32_t> parse_ipv4(std::string_view s)
{
	// inet_pton(AF_INET) accepts exactly the dotted quad (no octal, no short forms).
	const std::string z(s);
	in_addr a{};
	if (inet_pton(AF_INET, z.c_str(), &a) != 1)
		return std::nullopt;
	return ntohl(a.s_addr);
}

std::optional<u128> parse_ipv6(std::string_view s)
{
	const std::string z(s);
	in6_addr a{};
	if (inet_pton(AF_INET6, z.c_str(), &a) != 1)
		return std::nullopt;
	u128 v = 0;
	for (auto byte : a.s6_addr)
		v = (v << 8) | byte;
	return v;
}

} // namespace portcullis::rules::detail
