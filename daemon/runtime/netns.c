/*
 * Container namespace discovery with libnl-route. The container side is dumped by a thread
 * that joins the container's namespace and dies with it, so no moatd thread is ever left in
 * a foreign namespace (a netlink socket belongs to the namespace it was created in, which is
 * why the dump happens in that thread too). The host side is looked up by index, one
 * RTM_GETLINK per veth, rather than dumping every host link per container.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netns.h"

struct dump_job {
	int nsfd;
	struct netns_ifaces *res;
	int ret;
};

static int nl_errno(int nlerr)
{
	switch (-nlerr) {
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_PERM:
		return -EPERM;
	case NLE_OBJ_NOTFOUND:
	case NLE_NODEV:
		return -ENODEV;
	default:
		return -EIO;
	}
}

static int route_socket(struct nl_sock **out)
{
	struct nl_sock *sk = nl_socket_alloc();
	int ret;

	if (!sk)
		return -ENOMEM;
	ret = nl_connect(sk, NETLINK_ROUTE);
	if (ret < 0) {
		nl_socket_free(sk);
		return nl_errno(ret);
	}
	*out = sk;
	return 0;
}

static void link_copy(struct rtnl_link *link, struct netns_iface *it)
{
	struct nl_addr *mac = rtnl_link_get_addr(link);
	const char *kind = rtnl_link_get_type(link);

	it->ifindex = rtnl_link_get_ifindex(link);
	snprintf(it->name, sizeof(it->name), "%s", rtnl_link_get_name(link) ?: "");
	snprintf(it->kind, sizeof(it->kind), "%s", kind ?: "");
	if (mac && nl_addr_get_len(mac) == 6)
		memcpy(it->mac, nl_addr_get_binary_addr(mac), 6);
	it->up = rtnl_link_get_flags(link) & IFF_UP;
	it->peer_ifindex = rtnl_link_get_link(link);
	if (it->peer_ifindex == it->ifindex)
		it->peer_ifindex = 0;
}

static struct netns_iface *find_index(struct netns_ifaces *l, int ifindex)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->v[i].ifindex == ifindex)
			return &l->v[i];
	return NULL;
}

/* Link-local v6 addresses say nothing about who a container is. */
static bool addr_wanted(struct nl_addr *a)
{
	const uint8_t *b = nl_addr_get_binary_addr(a);

	if (nl_addr_get_family(a) == AF_INET)
		return nl_addr_get_len(a) == 4;
	return nl_addr_get_family(a) == AF_INET6 && nl_addr_get_len(a) == 16 &&
	       !(b[0] == 0xfe && (b[1] & 0xc0) == 0x80);
}

static int addr_add(struct netns_iface *it, struct rtnl_addr *ra)
{
	struct nl_addr *a = rtnl_addr_get_local(ra);
	struct moat_addr *na;
	uint8_t *np;

	if (!a || !addr_wanted(a))
		return 0;
	na = realloc(it->addrs, (it->naddrs + 1) * sizeof(*na));
	if (!na)
		return -ENOMEM;
	it->addrs = na;
	np = realloc(it->plens, it->naddrs + 1);
	if (!np)
		return -ENOMEM;
	it->plens = np;
	memset(&na[it->naddrs], 0, sizeof(*na));
	na[it->naddrs].family = nl_addr_get_family(a);
	memcpy(na[it->naddrs].a, nl_addr_get_binary_addr(a), nl_addr_get_len(a));
	np[it->naddrs] = rtnl_addr_get_prefixlen(ra);
	it->naddrs++;
	return 0;
}

/* Runs in the container's namespace: links and addresses into plain structs. */
static int dump_here(struct netns_ifaces **out)
{
	struct nl_cache *links = NULL, *addrs = NULL;
	struct netns_ifaces *l = NULL;
	struct nl_sock *sk = NULL;
	struct nl_object *o;
	struct netns_iface *it;
	int ret;

	ret = route_socket(&sk);
	if (ret)
		return ret;
	if ((ret = rtnl_link_alloc_cache(sk, AF_UNSPEC, &links)) < 0 ||
	    (ret = rtnl_addr_alloc_cache(sk, &addrs)) < 0) {
		ret = nl_errno(ret);
		goto out;
	}
	ret = -ENOMEM;
	l = calloc(1, sizeof(*l));
	if (!l || !(l->v = calloc(nl_cache_nitems(links) + 1, sizeof(*l->v))))
		goto out;
	for (o = nl_cache_get_first(links); o; o = nl_cache_get_next(o))
		link_copy((struct rtnl_link *)o, &l->v[l->n++]);
	for (o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o)) {
		it = find_index(l, rtnl_addr_get_ifindex((struct rtnl_addr *)o));
		if (it && addr_add(it, (struct rtnl_addr *)o))
			goto out;
	}
	*out = l;
	l = NULL;
	ret = 0;
out:
	netns_ifaces_free(l);
	nl_cache_free(addrs);
	nl_cache_free(links);
	nl_socket_free(sk);
	return ret;
}

static void *dump_thread(void *arg)
{
	struct dump_job *job = arg;

	if (setns(job->nsfd, CLONE_NEWNET) < 0)
		job->ret = -errno;
	else
		job->ret = dump_here(&job->res);
	return NULL;
}

/* Dump the namespace nsfd refers to from a thread of its own; signals blocked there. */
static int dump_in(int nsfd, struct netns_ifaces **out)
{
	struct dump_job job = { .nsfd = nsfd };
	sigset_t all, old;
	pthread_t t;
	int ret;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&t, NULL, dump_thread, &job);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		return ret;
	pthread_join(t, NULL);
	if (job.ret)
		return job.ret;
	*out = job.res;
	return 0;
}

static int nsid_attr(const struct nlmsghdr *nlh, void *data)
{
	struct nlattr *a;

	mnl_attr_for_each(a, nlh, sizeof(struct rtgenmsg))
		if (mnl_attr_get_type(a) == NETNSA_NSID && mnl_attr_get_payload_len(a) == 4)
			*(int32_t *)data = (int32_t)mnl_attr_get_u32(a);
	return MNL_CB_OK;
}

/*
 * The id moatd's namespace gives the namespace nsfd names (RTM_GETNSID): what a host link's
 * IFLA_LINK_NETNSID says when its peer is there. NETNSA_NSID_NOT_ASSIGNED (-1) when it has
 * none (then no host link peers into it), or -errno.
 */
static int nsid_of(int nsfd, int32_t *out)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtgenmsg *g;
	int32_t nsid = NETNSA_NSID_NOT_ASSIGNED;
	ssize_t n;
	int ret = nl ? 0 : -errno;

	nlh->nlmsg_type = RTM_GETNSID;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = 1;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->rtgen_family = AF_UNSPEC;
	mnl_attr_put_u32(nlh, NETNSA_FD, (uint32_t)nsfd);
	if (!ret && (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
		     mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0))
		ret = -errno;
	if (!ret && (n = mnl_socket_recvfrom(nl, buf, sizeof(buf))) < 0)
		ret = -errno;
	if (!ret && mnl_cb_run(buf, (size_t)n, 1, mnl_socket_get_portid(nl), nsid_attr,
			       &nsid) < 0)
		ret = -errno;
	if (nl)
		mnl_socket_close(nl);
	if (!ret)
		*out = nsid;
	return ret;
}

/*
 * The host link at it->peer_ifindex, if it is it's veth peer, and its bridge; *peer_ns: the
 * namespace id the host gives that veth's peer. The container says which index its peer has
 * (IFLA_LINK, which the kernel sets and no one can change), but it could make up a pair of
 * its own whose numbers match another container's: the caller keeps the host side only when
 * peer_ns is the container's own namespace (host_verify).
 */
static void host_resolve(struct nl_sock *sk, struct netns_iface *it, int32_t *peer_ns)
{
	struct rtnl_link *hl = NULL, *ml = NULL;

	*peer_ns = NETNSA_NSID_NOT_ASSIGNED;
	if (!it->peer_ifindex || rtnl_link_get_kernel(sk, it->peer_ifindex, NULL, &hl) < 0)
		return;
	if (rtnl_link_get_link(hl) != it->ifindex || rtnl_link_get_link_netnsid(hl, peer_ns) < 0 ||
	    strcmp(rtnl_link_get_type(hl) ?: "", "veth"))
		goto out;
	it->host_ifindex = it->peer_ifindex;
	snprintf(it->host_name, sizeof(it->host_name), "%s", rtnl_link_get_name(hl) ?: "");
	it->master_ifindex = rtnl_link_get_master(hl);
	if (it->master_ifindex && rtnl_link_get_kernel(sk, it->master_ifindex, NULL, &ml) >= 0)
		snprintf(it->master_name, sizeof(it->master_name), "%s",
			 rtnl_link_get_name(ml) ?: "");
out:
	rtnl_link_put(ml);
	rtnl_link_put(hl);
}

/* Forgets the host side of it unless its peer is in the namespace the host calls nsid. */
static void host_verify(struct netns_iface *it, int32_t peer_ns, int32_t nsid)
{
	if (nsid != NETNSA_NSID_NOT_ASSIGNED && peer_ns == nsid)
		return;
	it->host_ifindex = it->master_ifindex = 0;
	it->host_name[0] = it->master_name[0] = '\0';
}

/* Does fd name the namespace we are in? Then there is no container side to read. */
static int same_ns(int nsfd)
{
	struct stat a, b;

	if (fstat(nsfd, &a) < 0 || stat("/proc/thread-self/ns/net", &b) < 0)
		return -errno;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int netns_ifaces_load(pid_t pid, struct netns_ifaces **out)
{
	struct netns_ifaces *l = NULL;
	struct nl_sock *sk = NULL;
	int32_t nsid = NETNSA_NSID_NOT_ASSIGNED, *peer_ns = NULL;
	char path[64];
	int nsfd, ret;
	size_t i;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	ret = same_ns(nsfd);
	if (ret)
		goto out;
	ret = dump_in(nsfd, &l);
	if (!ret)
		ret = route_socket(&sk);
	if (ret)
		goto out;
	peer_ns = calloc(l->n + 1, sizeof(*peer_ns));
	if (!peer_ns) {
		ret = -ENOMEM;
		goto out;
	}
	/* links first: reporting a peer's namespace is what gives it an id, if it had none */
	for (i = 0; i < l->n; i++)
		host_resolve(sk, &l->v[i], &peer_ns[i]);
	ret = nsid_of(nsfd, &nsid);
	if (ret)
		goto out;
	for (i = 0; i < l->n; i++)
		host_verify(&l->v[i], peer_ns[i], nsid);
	*out = l;
	l = NULL;
out:
	if (ret > 0)
		ret = -EALREADY;
	free(peer_ns);
	nl_socket_free(sk);
	netns_ifaces_free(l);
	close(nsfd);
	return ret;
}

void netns_ifaces_free(struct netns_ifaces *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; l->v && i < l->n; i++) {
		free(l->v[i].addrs);
		free(l->v[i].plens);
	}
	free(l->v);
	free(l);
}

const struct netns_iface *netns_ifaces_find_mac(const struct netns_ifaces *l,
						const uint8_t mac[6])
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (!memcmp(l->v[i].mac, mac, 6))
			return &l->v[i];
	return NULL;
}

/* Every local address of the current namespace into v (n so far, cap room), sorted. */
static void self_addrs_fill(struct nl_cache *addrs, struct moat_addr *v, size_t cap, size_t *n)
{
	for (struct nl_object *o = nl_cache_get_first(addrs); o && *n < cap;
	     o = nl_cache_get_next(o)) {
		struct nl_addr *a = rtnl_addr_get_local((struct rtnl_addr *)o);
		int fam = a ? nl_addr_get_family(a) : 0;

		if ((fam != AF_INET || nl_addr_get_len(a) != 4) &&
		    (fam != AF_INET6 || nl_addr_get_len(a) != 16))
			continue;
		memset(&v[*n], 0, sizeof(v[*n]));
		v[*n].family = (uint8_t)fam;
		memcpy(v[*n].a, nl_addr_get_binary_addr(a), nl_addr_get_len(a));
		(*n)++;
	}
	qsort(v, *n, sizeof(*v), moat_addr_cmp);
}

int netns_self_addrs(struct moat_addr **out, size_t *n)
{
	struct nl_cache *addrs = NULL;
	struct moat_addr *v = NULL;
	struct nl_sock *sk = NULL;
	size_t k = 0, o = 0;
	int ret = route_socket(&sk);

	if (!ret && (ret = rtnl_addr_alloc_cache(sk, &addrs)) < 0)
		ret = nl_errno(ret);
	if (!ret && !(v = calloc(nl_cache_nitems(addrs) + 1, sizeof(*v))))
		ret = -ENOMEM;
	if (!ret)
		self_addrs_fill(addrs, v, (size_t)nl_cache_nitems(addrs), &k);
	for (size_t i = 0; !ret && i < k; i++)
		if (!o || moat_addr_cmp(&v[o - 1], &v[i]))
			v[o++] = v[i];
	nl_cache_free(addrs);
	nl_socket_free(sk);
	if (ret) {
		free(v);
		return ret;
	}
	*out = o ? v : (free(v), NULL);
	*n = o;
	return 0;
}
