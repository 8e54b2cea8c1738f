// SPDX-License-Identifier: MIT
// Configuration: file syntax, every type of option, line-numbered errors, flags overriding
// the file, and --help.
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "eng_config.h"

namespace {

int parse(eng_config *cfg, const std::string &text, std::string *err)
{
	char buf[512] = "";
	int rc = eng_config_parse(cfg, text.data(), text.size(), "t.conf", buf, sizeof(buf));
	*err = buf;
	return rc;
}

int args(eng_config *cfg, std::vector<std::string> v, std::string *err, std::string *out = nullptr)
{
	std::vector<char *> argv;
	v.insert(v.begin(), "tachyond");
	for (auto &s : v)
		argv.push_back(&s[0]);
	argv.push_back(nullptr);
	char buf[512] = "";
	char *text = nullptr;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int rc = eng_config_args(cfg, static_cast<int>(v.size()), argv.data(), f, buf, sizeof(buf));
	fclose(f);
	if (out)
		*out = std::string(text, len);
	free(text);
	*err = buf;
	return rc;
}

} // namespace

TEST(EngConfig, Defaults)
{
	eng_config c;
	eng_config_defaults(&c);
	EXPECT_STREQ(c.bind, "127.0.0.1");
	EXPECT_EQ(c.port, 1883u);
	EXPECT_EQ(c.backend, (uint32_t)ENG_BACKEND_KERNEL);
	EXPECT_TRUE(c.allow_anonymous);
}

TEST(EngConfig, ParsesEveryType)
{
	eng_config c;
	eng_config_defaults(&c);
	std::string err;
	ASSERT_EQ(parse(&c,
			"# a comment\n"
			"\n"
			"port 1884\n"
			"  bind\t::1  \r\n"
			"allow_anonymous false\n"
			"drop_policy oldest\n"
			"max_retained_bytes 1099511627776\n"
			"dpdk_args --no-huge -m 1024 --vdev=net_tap0,iface=t0\n"
			"log_level debug",
			&err),
		  0)
		<< err;
	EXPECT_EQ(c.port, 1884u);
	EXPECT_STREQ(c.bind, "::1");
	EXPECT_FALSE(c.allow_anonymous);
	EXPECT_EQ(c.drop_policy, (uint32_t)ENG_DROP_OLDEST);
	EXPECT_EQ(c.max_retained_bytes, 1099511627776ull);
	EXPECT_STREQ(c.dpdk_args, "--no-huge -m 1024 --vdev=net_tap0,iface=t0");
	EXPECT_EQ(c.log_level, (uint32_t)ENG_LOG_DEBUG);
}

TEST(EngConfig, DeliveryOptions)
{
	eng_config c;
	eng_config_defaults(&c);
	EXPECT_EQ(c.qos0_overload, (uint32_t)ENG_QOS0_DROP);
	EXPECT_EQ(c.retry_interval, 0u);
	EXPECT_EQ(c.topic_alias_maximum_out, 16u);
	std::string err;
	ASSERT_EQ(parse(&c,
			"qos0_overload pause\n"
			"slow_consumer_timeout 3\n"
			"retry_interval 20\n"
			"topic_alias_maximum_out 0\n",
			&err),
		  0)
		<< err;
	EXPECT_EQ(c.qos0_overload, (uint32_t)ENG_QOS0_PAUSE);
	EXPECT_EQ(c.slow_consumer_timeout, 3u);
	EXPECT_EQ(c.retry_interval, 20u);
	EXPECT_EQ(c.topic_alias_maximum_out, 0u);
	EXPECT_NE(parse(&c, "qos0_overload buffer\n", &err), 0);
	EXPECT_NE(err.find("drop pause"), std::string::npos) << err;
	EXPECT_NE(parse(&c, "slow_consumer_timeout 0\n", &err), 0);
	EXPECT_NE(parse(&c, "topic_alias_maximum_out 65536\n", &err), 0);
}

TEST(EngConfig, ErrorsNameTheLineAndTheRule)
{
	eng_config c;
	std::string err;
	struct {
		const char *text;
		const char *want;
	} cases[] = {
		{"port 1883\nprot 1\n", "t.conf:2: unknown option 'prot'"},
		{"port 70000\n", "t.conf:1: 'port' takes a whole number from 1 to 65535, not '70000'"},
		{"port -1\n", "t.conf:1: 'port' takes a whole number"},
		{"port 12x\n", "not '12x'"},
		{"\n\nallow_anonymous yes\n", "t.conf:3: 'allow_anonymous' takes true or false"},
		{"backend xdp\n", "t.conf:1: 'backend' takes one of kernel dpdk, not 'xdp'"},
		{"workers\n", "t.conf:1: option 'workers' has no value"},
		{"max_qos 3\n", "from 0 to 2"},
	};
	for (auto &tc : cases) {
		eng_config_defaults(&c);
		EXPECT_EQ(parse(&c, tc.text, &err), -EINVAL) << tc.text;
		EXPECT_NE(err.find(tc.want), std::string::npos) << err;
	}
	std::string longv = "bind " + std::string(300, 'a') + "\n";
	eng_config_defaults(&c);
	EXPECT_EQ(parse(&c, longv, &err), -EINVAL);
	EXPECT_NE(err.find("longer than 255"), std::string::npos) << err;
}

TEST(EngConfig, FlagsOverrideTheFile)
{
	char path[] = "/tmp/tachyon-config-XXXXXX";
	int fd = mkstemp(path);
	ASSERT_GE(fd, 0);
	std::string text = "port 2000\nworkers 3\nmax_inflight 7\n";
	ASSERT_EQ(write(fd, text.data(), text.size()), (ssize_t)text.size());
	close(fd);
	eng_config c;
	eng_config_defaults(&c);
	std::string err;
	// --port comes before --config on the line, and still wins over the file.
	ASSERT_EQ(args(&c, {"--port", "2001", "--config", path, "--set", "max_inflight=9",
			    "--backend", "dpdk", "--ip", "10.77.0.2/24"},
		       &err),
		  0)
		<< err;
	EXPECT_EQ(c.port, 2001u);
	EXPECT_EQ(c.workers, 3u);
	EXPECT_EQ(c.max_inflight, 9u);
	EXPECT_EQ(c.backend, (uint32_t)ENG_BACKEND_DPDK);
	EXPECT_STREQ(c.ip, "10.77.0.2/24");
	unlink(path);
}

TEST(EngConfig, FlagErrors)
{
	eng_config c;
	eng_config_defaults(&c);
	std::string err;
	EXPECT_EQ(args(&c, {"--frobnicate"}, &err), -EINVAL);
	EXPECT_NE(err.find("--frobnicate"), std::string::npos) << err;
	EXPECT_EQ(args(&c, {"--config", "/nonexistent/t.conf"}, &err), -ENOENT);
	EXPECT_NE(err.find("/nonexistent/t.conf"), std::string::npos) << err;
	EXPECT_EQ(args(&c, {"--set", "nokey"}, &err), -EINVAL);
	EXPECT_EQ(args(&c, {"--workers", "many"}, &err), -EINVAL);
	EXPECT_NE(err.find("'workers'"), std::string::npos) << err;
	EXPECT_EQ(args(&c, {"stray"}, &err), -EINVAL);
}

TEST(EngConfig, HelpListsEveryOption)
{
	eng_config c;
	eng_config_defaults(&c);
	std::string err, out;
	EXPECT_EQ(args(&c, {"--help"}, &err, &out), 1);
	for (const char *k : {"--config", "--port", "--bind", "--workers", "--backend", "--dpdk-args",
			      "max_queued_messages", "password_file", "[1883]"})
		EXPECT_NE(out.find(k), std::string::npos) << k;
}
