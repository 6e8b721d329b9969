/*
 * archnet-txoff NETNS_PATH DEV [NETNS_PATH DEV ...]
 *
 * Turns TX checksum offload (and with it TSO) off on each DEV inside the network namespace
 * NETNS_PATH ("-" for the caller's own), like `ethtool -K DEV tx off`, but for any number of
 * interfaces in one process: the agent needs this on every node interface of the userspace
 * datapath, and one ethtool process per interface would cost more than creating the veths.
 * Exit status 0 when all succeeded; otherwise 1, with one line per failure on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int tx_off(const char *dev) {
  struct ethtool_value v = {.cmd = ETHTOOL_STXCSUM, .data = 0};
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (strlen(dev) >= IFNAMSIZ) return ENAMETOOLONG;
  strcpy(ifr.ifr_name, dev);
  ifr.ifr_data = (void *)&v;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return errno;
  int rc = ioctl(s, SIOCETHTOOL, &ifr) < 0 ? errno : 0;
  close(s);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 3 || argc % 2 == 0) {
    fprintf(stderr, "usage: archnet-txoff NETNS_PATH DEV [NETNS_PATH DEV ...]\n");
    return 2;
  }
  int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) {
    perror("archnet-txoff: /proc/self/ns/net");
    return 1;
  }
  int failed = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *ns = argv[i], *dev = argv[i + 1];
    int fd = strcmp(ns, "-") == 0 ? self : open(ns, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
      fprintf(stderr, "%s %s: cannot enter the namespace: %s\n", ns, dev, strerror(errno));
      failed = 1;
    } else {
      int rc = tx_off(dev);
      if (rc != 0) {
        fprintf(stderr, "%s %s: %s\n", ns, dev, strerror(rc));
        failed = 1;
      }
    }
    if (fd >= 0 && fd != self) close(fd);
  }
  return failed;
}
