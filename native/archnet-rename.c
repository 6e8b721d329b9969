/*
 * archnet-rename PID
 *
 * The prestart hook of bin/archetype-runc in one process (the wrapper runs it when it is
 * installed beside it, and falls back to its sh + jq hook when it cannot run): enters /proc/PID/ns/net, lists the links with their ifalias over
 * rtnetlink, and gives every interface whose ifalias is `archetype:NAME` its NAME. It plans
 * exactly as the wrapper's jq PLAN does (kept as the fallback without this helper): a foreign
 * interface that holds a wanted name moves to the first free ethN; every rename goes through a
 * temporary name first so swaps cannot collide; an interface that was UP is set down for the
 * rename and up again; an invalid name or two interfaces asking for one name fails with the
 * same message. The sh hook needed nsenter, ip, jq and ip again: 4-5 processes per container.
 *
 * Exit status 0 when the names are right (also when no interface is ours: not a lab container)
 * and when it cannot look inside (the container starts, with a note on stderr, since it cannot
 * tell a lab container from any other then); 1 with a message on stderr when a lab container's
 * interfaces cannot get their names; 2 without exactly one argument.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PREFIX "archetype:"

struct link {
  int index;
  int up;
  char name[IFNAMSIZ];
  char *want; /* the NAME of `archetype:NAME`, or NULL: not ours */
};

/* One rename of the plan: link `l` (its index) from `cur` through a temporary name to `target`. */
struct move {
  const struct link *l;
  char target[IFNAMSIZ * 4]; /* a wanted name is up to 15 characters, not bytes */
};

static struct link *links;
static size_t nlinks;
static const char *pid;

static void msg(const char *fmt, va_list ap) {
  fputs("archetype-runc: hook: ", stderr);
  vfprintf(stderr, fmt, ap);
}

/* A lab container whose interfaces cannot get their names: it must not start. */
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  msg(fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

/* Cannot look inside: let the container start, whatever it is. */
static void cannot_look(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  msg(fmt, ap);
  va_end(ap);
  fputs("; interfaces keep the names Docker gave them\n", stderr);
  exit(0);
}

/* Oniguruma's \s (the jq PLAN's `^[^\s/:]{1,15}$`) is Unicode White_Space. */
static int is_space(unsigned c) {
  return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
         c == 0x205f || c == 0x3000;
}

/* 1 to 15 characters (UTF-8 code points, as jq counts), none of them white space, / or :. */
static int valid_name(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  size_t chars = 0;
  while (*p) {
    unsigned c = *p++;
    int more = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
    if (c >= 0x80 && c < 0xc0) c = 0xfffd; /* a stray continuation byte: not white space */
    if (more) c &= 0x3f >> more;
    for (; more && (*p & 0xc0) == 0x80; more--) c = c << 6 | (*p++ & 0x3f);
    if (is_space(c) || c == '/' || c == ':') return 0;
    chars++;
  }
  return chars >= 1 && chars <= 15;
}

static const struct link *by_name(const char *name) {
  for (size_t i = 0; i < nlinks; i++)
    if (strcmp(links[i].name, name) == 0) return &links[i];
  return NULL;
}

/* The interface of ours asking for `name`, if any. */
static const struct link *claimer(const char *name) {
  for (size_t i = 0; i < nlinks; i++)
    if (links[i].want && strcmp(links[i].want, name) == 0) return &links[i];
  return NULL;
}

static int nl_open(void) {
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) < 0) return -1;
  return s;
}

static void add_link(struct ifinfomsg *ifi, int len) {
  struct link l = {.index = ifi->ifi_index, .up = !!(ifi->ifi_flags & IFF_UP)};
  const char *alias = NULL;
  for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type == IFLA_IFNAME) snprintf(l.name, sizeof l.name, "%s", (char *)RTA_DATA(a));
    if (a->rta_type == IFLA_IFALIAS) alias = RTA_DATA(a);
  }
  if (alias && strncmp(alias, PREFIX, strlen(PREFIX)) == 0) {
    l.want = strdup(alias + strlen(PREFIX));
    if (!l.want) die("out of memory");
  }
  struct link *more = realloc(links, (nlinks + 1) * sizeof *links);
  if (!more) die("out of memory");
  links = more;
  links[nlinks++] = l;
}

/* RTM_GETLINK dump into `links`, in the kernel's (ifindex) order as `ip link show` lists them.
 * Returns 0, 1 when the dump was interrupted by a change (to be repeated), or -1 (errno). */
static int list_links(int s) {
  struct {
    struct nlmsghdr h;
    struct ifinfomsg i;
  } req = {
      .h = {.nlmsg_len = sizeof req, .nlmsg_type = RTM_GETLINK, .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP},
      .i = {.ifi_family = AF_UNSPEC},
  };
  static char buf[65536];
  int intr = 0;
  if (send(s, &req, sizeof req, 0) < 0) return -1;
  for (;;) {
    ssize_t n = recv(s, buf, sizeof buf, 0);
    if (n < 0) return -1;
    for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_flags & NLM_F_DUMP_INTR) intr = 1;
      if (h->nlmsg_type == NLMSG_DONE) return intr;
      if (h->nlmsg_type == NLMSG_ERROR) {
        errno = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
        return -1;
      }
      if (h->nlmsg_type == RTM_NEWLINK)
        add_link(NLMSG_DATA(h), h->nlmsg_len - NLMSG_LENGTH(sizeof(struct ifinfomsg)));
    }
  }
}

/* One RTM_SETLINK on link `index`: a new name (when `name`), else the UP flag set to `up`.
 * Returns 0 or the kernel's errno. */
static int set_link(int s, int index, const char *name, int up) {
  struct {
    struct nlmsghdr h;
    struct ifinfomsg i;
    char attrs[RTA_SPACE(IFNAMSIZ * 4)];
  } req;
  memset(&req, 0, sizeof req);
  req.h.nlmsg_len = NLMSG_LENGTH(sizeof req.i);
  req.h.nlmsg_type = RTM_SETLINK;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  req.i.ifi_family = AF_UNSPEC;
  req.i.ifi_index = index;
  if (name) {
    /* A name the kernel cannot take (16 bytes or more) is its error to report, as with ip. */
    size_t len = strlen(name) + 1;
    if (len > IFNAMSIZ * 4) return ERANGE;
    struct rtattr *a = (void *)((char *)&req + NLMSG_ALIGN(req.h.nlmsg_len));
    a->rta_type = IFLA_IFNAME;
    a->rta_len = RTA_LENGTH(len);
    memcpy(RTA_DATA(a), name, len);
    req.h.nlmsg_len = NLMSG_ALIGN(req.h.nlmsg_len) + RTA_ALIGN(a->rta_len);
  } else {
    req.i.ifi_change = IFF_UP;
    req.i.ifi_flags = up ? IFF_UP : 0;
  }
  if (send(s, &req, req.h.nlmsg_len, 0) < 0) return errno;
  char buf[4096];
  for (;;) {
    ssize_t n = recv(s, buf, sizeof buf, 0);
    if (n < 0) return errno;
    for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n))
      if (h->nlmsg_type == NLMSG_ERROR) return -((struct nlmsgerr *)NLMSG_DATA(h))->error;
  }
}

static void apply(int s, int index, const char *what, const char *name, int up) {
  int rc = set_link(s, index, name, up);
  if (rc != 0) die("renaming interfaces failed: %s: %s", what, strerror(rc));
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: archnet-rename PID\n");
    return 2;
  }
  pid = argv[1];
  if (strspn(pid, "0123456789") != strlen(pid) || pid[0] == '0' || pid[0] == '\0' || strlen(pid) > 10)
    cannot_look("no pid in the OCI state (%s)", pid);
  char path[64];
  snprintf(path, sizeof path, "/proc/%s/ns/net", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
    cannot_look("cannot enter the network namespace of process %s: %s", pid, strerror(errno));
  close(fd);
  int s = nl_open();
  if (s < 0) cannot_look("no netlink socket in process %s's namespace: %s", pid, strerror(errno));
  int rc;
  for (int tries = 0; (rc = list_links(s)) != 0; tries++) {
    if (rc < 0 || tries == 9)
      cannot_look("cannot list the interfaces of process %s: %s", pid,
                  rc < 0 ? strerror(errno) : "they kept changing");
    nlinks = 0; /* interrupted by a change: list again */
  }

  /* From here on it is a lab container if any alias is ours: failing is right. The checks in
   * the order of the jq PLAN: links in order, the first problem wins. */
  struct move *moves = calloc(nlinks + 1, sizeof *moves);
  if (!moves) die("out of memory");
  size_t nmoves = 0;
  for (size_t i = 0; i < nlinks; i++) {
    const struct link *l = &links[i];
    if (!l->want) continue;
    if (!valid_name(l->want)) die("%s asks for invalid name %s", l->name, l->want);
    const struct link *first = claimer(l->want);
    if (first != l) die("%s and %s both ask to be named %s", first->name, l->name, l->want);
    if (strcmp(l->name, l->want) != 0) {
      moves[nmoves].l = l;
      snprintf(moves[nmoves++].target, sizeof moves->target, "%s", l->want);
    }
  }
  if (nmoves == 0) return 0;

  /* A foreign interface holding a wanted name moves to the first ethN that no interface has (nor
   * got from this loop) and none of ours asks for. */
  char **taken = calloc(nlinks + 1, sizeof *taken); /* ethN handed out so far */
  size_t ntaken = 0;
  if (!taken) die("out of memory");
  for (size_t i = 0; i < nlinks; i++) {
    const struct link *l = &links[i];
    if (l->want || !claimer(l->name)) continue;
    char eth[IFNAMSIZ * 4];
    for (unsigned n = 0;; n++) {
      snprintf(eth, sizeof eth, "eth%u", n);
      int used = by_name(eth) || claimer(eth);
      for (size_t t = 0; t < ntaken && !used; t++) used = strcmp(taken[t], eth) == 0;
      if (!used) break;
    }
    moves[nmoves].l = l;
    snprintf(moves[nmoves].target, sizeof moves->target, "%s", eth);
    taken[ntaken++] = moves[nmoves++].target;
  }

  /* Every mover to its temporary name first (down before, when up), then each to its target (up
   * again after). The links are addressed by index, which a rename does not change. */
  char tmp[32], what[IFNAMSIZ * 10 + 32]; /* tmp: named like the jq PLAN's (arctmpNx0, ...) */
  for (size_t k = 0; k < nmoves; k++) {
    const struct link *l = moves[k].l;
    snprintf(tmp, sizeof tmp, "arctmp%dx%zu", (int)(getpid() % 10000), k);
    if (l->up) {
      snprintf(what, sizeof what, "link set dev %s down", l->name);
      apply(s, l->index, what, NULL, 0);
    }
    snprintf(what, sizeof what, "link set dev %s name %s", l->name, tmp);
    apply(s, l->index, what, tmp, 0);
  }
  for (size_t k = 0; k < nmoves; k++) {
    const struct link *l = moves[k].l;
    snprintf(tmp, sizeof tmp, "arctmp%dx%zu", (int)(getpid() % 10000), k);
    snprintf(what, sizeof what, "link set dev %s name %s", tmp, moves[k].target);
    apply(s, l->index, what, moves[k].target, 0);
    if (l->up) {
      snprintf(what, sizeof what, "link set dev %s up", moves[k].target);
      apply(s, l->index, what, NULL, 1);
    }
  }
  return 0;
}
