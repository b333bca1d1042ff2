#include "classbench.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <zlib.h>

namespace portcullis::classbench {
namespace {

// A cursor over one line; every parse_* skips leading blanks and reports failure by returning false.
struct cursor {
	const char* p;
	const char* end;

	void skip_blanks()
	{
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
			++p;
	}
	bool literal(char c)
	{
		skip_blanks();
		if (p < end && *p == c) {
			++p;
			return true;
		}
		return false;
	}
	template <class T>
	bool number(T& out, int base = 10)
	{
		skip_blanks();
		if (base == 16 && end - p > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
			p += 2;
		const auto r = std::from_chars(p, end, out, base);
		if (r.ec != std::errc())
			return false;
		p = r.ptr;
		return true;
	}
	bool ipv4_prefix(value_range<uint32_t>& out)
	{
		uint32_t address = 0;
		for (int i = 0; i < 4; ++i) {
			unsigned octet = 0;
			if ((i > 0 && !literal('.')) || !number(octet) || octet > 255)
				return false;
			address = address << 8 | octet;
		}
		unsigned length = 0;
		if (!literal('/') || !number(length) || length > 32)
			return false;
		const uint32_t host = length == 0 ? ~0u : (length == 32 ? 0u : ~0u >> length);
		out = {address & ~host, (address & ~host) | host};
		return true;
	}
	bool port_range(value_range<uint16_t>& out)
	{
		return number(out.lo) && literal(':') && number(out.hi) && out.lo <= out.hi;
	}
};

std::string where(const std::string& path, size_t line, const char* what)
{
	return path + ":" + std::to_string(line) + ": " + what;
}

bool parse_rule(cursor c, tuple_match& m, const char*& error)
{
	value_range<uint32_t> src{}, dst{};
	value_range<uint16_t> sport{}, dport{};
	unsigned proto = 0, proto_mask = 0;
	if (!c.literal('@')) {
		error = "expected '@' at the start of a rule";
		return false;
	}
	if (!c.ipv4_prefix(src) || !c.ipv4_prefix(dst)) {
		error = "expected <a.b.c.d>/<len> source and destination";
		return false;
	}
	if (!c.port_range(sport) || !c.port_range(dport)) {
		error = "expected <lo> : <hi> source and destination port ranges";
		return false;
	}
	if (!c.number(proto, 16) || !c.literal('/') || !c.number(proto_mask, 16) || proto > 255 || proto_mask > 255) {
		error = "expected <proto>/<mask> in hex";
		return false;
	}
	// The flags value/mask that may follow is deliberately not read (see classbench.h).
	m.src4 = {src};
	m.dst4 = {dst};
	m.sport = {sport};
	m.dport = {dport};
	for (unsigned v = 0; v < 256; ++v)
		if ((v & proto_mask) == (proto & proto_mask))
			m.proto.push_back({uint8_t(v), uint8_t(v)});
	normalize(m.proto);
	return true;
}

} // namespace

rules_result load_rules(const std::string& path)
{
	rules_result result;
	std::ifstream in(path);
	if (!in) {
		result.error = path + ": cannot open";
		return result;
	}
	std::string line;
	size_t number = 0;
	while (std::getline(in, line)) {
		++number;
		if (line.find_first_not_of(" \t\r") == std::string::npos)
			continue;
		tuple_match m;
		const char* error = nullptr;
		if (!parse_rule(cursor{line.data(), line.data() + line.size()}, m, error)) {
			result.error = where(path, number, error);
			result.rules.clear();
			return result;
		}
		result.rules.push_back(std::move(m));
	}
	return result;
}

trace_result load_trace(const std::string& path, size_t max_packets)
{
	trace_result result;
	gzFile file = gzopen(path.c_str(), "rb");
	if (file == nullptr) {
		result.error = path + ": cannot open";
		return result;
	}
	gzbuffer(file, 1 << 20);
	char buf[512];
	size_t number = 0;
	while (result.packets.size() < max_packets && gzgets(file, buf, sizeof(buf)) != nullptr) {
		++number;
		cursor c{buf, buf + std::strlen(buf)};
		c.skip_blanks();
		if (c.p == c.end || *c.p == '\n')
			continue;
		uint32_t src = 0, dst = 0, filter = 0;
		unsigned sport = 0, dport = 0, proto = 0, flags = 0;
		if (!c.number(src) || !c.number(dst) || !c.number(sport) || !c.number(dport) || !c.number(proto) ||
		    !c.number(flags) || !c.number(filter) || sport > 65535 || dport > 65535 || proto > 255) {
			result.error = where(path, number, "expected <src> <dst> <sport> <dport> <proto> <flags> <filter>");
			result.packets.clear();
			break;
		}
		trace_packet p{};
		p.key.src = src;
		p.key.dst = dst;
		p.key.sport = uint16_t(sport);
		p.key.dport = uint16_t(dport);
		p.key.proto = uint8_t(proto);
		p.key.tcp_flags = 0;  // ClassBench flags ignored, as for the rules
		p.filter = filter;
		result.packets.push_back(p);
	}
	int z_error = Z_OK;
	const char* message = gzerror(file, &z_error);
	if (result.error.empty() && z_error != Z_OK && z_error != Z_STREAM_END) {
		result.error = path + ": " + message;
		result.packets.clear();
	}
	gzclose(file);
	return result;
}

std::vector<std::string> list_sets(const std::string& dir)
{
	std::vector<std::string> names;
	std::error_code ec;
	for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
		const auto path = entry.path();
		if (path.extension() != ".rules")
			continue;
		const std::string name = path.stem().string();
		if (std::filesystem::exists(std::filesystem::path(dir) / (name + ".trace.gz"), ec))
			names.push_back(name);
	}
	std::sort(names.begin(), names.end());
	return names;
}

} // namespace portcullis::classbench
