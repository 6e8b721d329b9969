/*
 * archnet-carrier TIMEOUT_MS NETNS_PATH DEV [NETNS_PATH DEV ...]
 *
 * After a cable is plugged back in (the other end of DEV's veth set up), waits until each DEV
 * inside the network namespace NETNS_PATH ("-" for the caller's own) transmits again, then
 * forgets the neighbours (ARP, NDP) the node failed to resolve while the cable was out.
 *
 * Why both: the kernel gives DEV its carrier at once but brings it into service later, in its
 * link-watch work (operstate, and the queue that until then drops every frame); and a lookup
 * started during the outage stays INCOMPLETE, so the next packet waits for its retransmit timer
 * (up to a second) instead of asking at once. ETHTOOL_GLINK makes a recent kernel run DEV's
 * pending link-watch work now (an older one only waits for the lock that work holds), so most
 * waits end at the first check. A DEV the node keeps down itself has nothing to wait for.
 * One process for any number of interfaces. Exit status 0 when all are ready; otherwise 1,
 * with one line per interface on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

static int ifreq_for(struct ifreq *ifr, const char *dev) {
  memset(ifr, 0, sizeof *ifr);
  if (strlen(dev) >= IFNAMSIZ) return ENAMETOOLONG;
  strcpy(ifr->ifr_name, dev);
  return 0;
}

/* Runs DEV's pending link-watch work (or waits for it) and returns the interface flags after it. */
static int sync_flags(int s, const char *dev, int *flags) {
  struct ethtool_value v = {.cmd = ETHTOOL_GLINK};
  struct ifreq ifr;
  int rc = ifreq_for(&ifr, dev);
  if (rc != 0) return rc;
  ifr.ifr_data = (void *)&v;
  if (ioctl(s, SIOCETHTOOL, &ifr) < 0 && errno != EOPNOTSUPP) return errno;
  if ((rc = ifreq_for(&ifr, dev)) != 0) return rc;
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) return errno;
  *flags = ifr.ifr_flags;
  return 0;
}

/*
 * IFF_RUNNING (operstate up) is set by the same link-watch pass, under the same lock, just before
 * the queue is activated; seen before a sync_flags call, that pass has finished.
 */
static int until_running(int s, const char *dev, long long deadline) {
  int flags = 0, rc;
  while ((rc = sync_flags(s, dev, &flags)) == 0) {
    if (!(flags & IFF_UP)) return 0;
    if (flags & IFF_RUNNING) return sync_flags(s, dev, &flags);
    if (now_ms() >= deadline) return ETIMEDOUT;
    nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
  }
  return rc;
}

/* Sends one request and reads until its ack/error, or (dump) until NLMSG_DONE; cb sees each reply. */
static int rtnl_talk(int nl, struct nlmsghdr *req, void (*cb)(struct nlmsghdr *, void *), void *arg) {
  static unsigned seq;
  req->nlmsg_seq = ++seq;
  if (send(nl, req, req->nlmsg_len, 0) < 0) return errno;
  char buf[32768];
  for (;;) {
    ssize_t n = recv(nl, buf, sizeof buf, 0);
    if (n < 0) return errno;
    for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_seq != req->nlmsg_seq) continue;
      if (h->nlmsg_type == NLMSG_DONE) return 0;
      if (h->nlmsg_type == NLMSG_ERROR) return -((struct nlmsgerr *)NLMSG_DATA(h))->error;
      if (cb) cb(h, arg);
    }
  }
}

struct del_req {
  struct nlmsghdr h;
  struct ndmsg nd;
  char dst[RTA_SPACE(16)]; /* NDA_DST: an IPv4 or IPv6 address */
};

#define STALE_MAX 64
struct stale {
  int ifindex, count;
  struct del_req del[STALE_MAX];
};

/* Keeps a delete request for each unresolved neighbour of the interface (their NDA_DST). */
static void collect(struct nlmsghdr *h, void *arg) {
  struct stale *st = arg;
  struct ndmsg *nd = NLMSG_DATA(h);
  if (h->nlmsg_type != RTM_NEWNEIGH || nd->ndm_ifindex != st->ifindex) return;
  if (!(nd->ndm_state & (NUD_INCOMPLETE | NUD_FAILED)) || st->count == STALE_MAX) return;
  int len = RTM_PAYLOAD(h);
  for (struct rtattr *a = RTM_RTA(nd); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type != NDA_DST || RTA_PAYLOAD(a) > 16) continue;
    struct del_req *d = &st->del[st->count++];
    memset(d, 0, sizeof *d);
    d->h.nlmsg_len = NLMSG_LENGTH(sizeof d->nd) + RTA_LENGTH(RTA_PAYLOAD(a));
    d->h.nlmsg_type = RTM_DELNEIGH;
    d->h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    d->nd = (struct ndmsg){.ndm_family = nd->ndm_family, .ndm_ifindex = nd->ndm_ifindex};
    memcpy(d->dst, a, RTA_LENGTH(RTA_PAYLOAD(a)));
  }
}

/* Deletes the neighbour entries of DEV that are INCOMPLETE or FAILED (STALE_MAX per dump). */
static int forget_unresolved(const char *dev) {
  static struct stale st;
  int ifindex = (int)if_nametoindex(dev);
  if (ifindex == 0) return errno;
  int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (nl < 0) return errno;
  struct {
    struct nlmsghdr h;
    struct ndmsg nd;
  } dump = {
      .h = {.nlmsg_len = sizeof dump, .nlmsg_type = RTM_GETNEIGH, .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP},
      .nd = {.ndm_family = AF_UNSPEC},
  };
  int rc;
  do {
    st.ifindex = ifindex;
    st.count = 0;
    rc = rtnl_talk(nl, &dump.h, collect, &st);
    for (int i = 0; rc == 0 && i < st.count; i++) {
      rc = rtnl_talk(nl, &st.del[i].h, NULL, NULL);
      if (rc == ENOENT) rc = 0; /* resolved or expired meanwhile */
    }
  } while (rc == 0 && st.count == STALE_MAX);
  close(nl);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 4 || argc % 2 != 0) {
    fprintf(stderr, "usage: archnet-carrier TIMEOUT_MS NETNS_PATH DEV [NETNS_PATH DEV ...]\n");
    return 2;
  }
  long long deadline = now_ms() + atoll(argv[1]);
  int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) {
    perror("archnet-carrier: /proc/self/ns/net");
    return 1;
  }
  int failed = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    const char *ns = argv[i], *dev = argv[i + 1];
    int fd = strcmp(ns, "-") == 0 ? self : open(ns, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
      fprintf(stderr, "%s %s: cannot enter the namespace: %s\n", ns, dev, strerror(errno));
      failed = 1;
    } else {
      int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      int rc = s < 0 ? errno : until_running(s, dev, deadline);
      if (rc == 0) rc = forget_unresolved(dev);
      if (rc == ETIMEDOUT)
        fprintf(stderr, "%s %s: no carrier after %s ms\n", ns, dev, argv[1]);
      else if (rc != 0)
        fprintf(stderr, "%s %s: %s\n", ns, dev, strerror(rc));
      failed |= rc != 0;
      if (s >= 0) close(s);
    }
    if (fd >= 0 && fd != self) close(fd);
  }
  return failed;
}
