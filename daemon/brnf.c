/* br_netfilter and its two sysctls in moatd's namespace (brnf.h). */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "brnf.h"
#include "log.h"

#define BRNF_DIR "/proc/sys/net/bridge"

static const char *const sysctls[] = { "bridge-nf-call-iptables", "bridge-nf-call-ip6tables" };

extern char **environ;

/* modprobe br_netfilter; 0 or -errno (-ENOENT: modprobe missing, -EIO: it failed). */
static int module_load(void)
{
	char *argv[] = { "modprobe", "-q", "br_netfilter", NULL };
	pid_t pid;
	int st, ret = posix_spawnp(&pid, "modprobe", NULL, NULL, argv, environ);

	if (ret)
		return -ret;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(st) && !WEXITSTATUS(st) ? 0 : -EIO;
}

/* The sysctl's value ('0', '1'...), or -errno. */
static int sysctl_read(const char *path)
{
	char c = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = read(fd, &c, 1) == 1 ? c : -EIO;
	close(fd);
	return ret;
}

static int sysctl_write_one(const char *path)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, "1\n", 2) != 2)
		ret = -errno;
	close(fd);
	return ret;
}

/* One sysctl to 1; what it was is logged when it changes. */
static int sysctl_set(const char *name, char *why, size_t whylen)
{
	char path[128];
	int was, ret;

	snprintf(path, sizeof(path), BRNF_DIR "/%s", name);
	was = sysctl_read(path);
	if (was == '1')
		return 0;
	ret = was < 0 ? was : sysctl_write_one(path);
	if (!ret && sysctl_read(path) != '1')
		ret = -EIO;
	if (ret) {
		snprintf(why, whylen, "net.bridge.%s is not 1 and cannot be set (%s): containers "
			 "on one bridge would reach each other past every policy", name,
			 strerror(-ret));
		return ret;
	}
	log_info("set net.bridge.%s to 1 (was %c): bridged traffic now crosses the policies",
		 name, was);
	return 0;
}

int brnf_ensure(char *why, size_t whylen)
{
	int ret = 0;

	if (access(BRNF_DIR "/bridge-nf-call-iptables", F_OK) < 0) {
		ret = module_load();
		if (!ret)
			log_info("loaded br_netfilter: bridged traffic crosses the IP hooks");
		else
			snprintf(why, whylen, "br_netfilter is not loaded and modprobe br_netfilter "
				 "failed (%s): containers on one bridge would reach each other past "
				 "every policy", strerror(-ret));
	}
	for (size_t i = 0; !ret && i < sizeof(sysctls) / sizeof(sysctls[0]); i++)
		ret = sysctl_set(sysctls[i], why, whylen);
	return ret;
}
