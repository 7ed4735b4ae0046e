/*
 * blockcount: a QEMU TCG plugin (plugin API version 1, qemu 7.2) that counts how often every
 * translated block executes, for edgeavs' cycle projection (edgeavs/device/projection.py).
 *
 * The guest steers it with a marker system call: syscall(NR, MAGIC, command, a, b), where NR is
 * a number no kernel implements (the plugin argument sys=NR; the guest gets ENOSYS, natively or
 * under qemu, and nothing else happens). Commands:
 *   1 a b  add [a, b) to the code ranges ("regions": e.g. the executable mappings of model.so)
 *   2      start counting (counts since the last start are dropped)
 *   3      stop counting and write the counts to the file out=PATH
 * Outside the ranges a block's executions are attributed to the last block executed *inside*
 * them (its caller: a libm call of a TIR function, or the runtime between two functions), so
 * the reader can charge helpers to the function that called them.
 *
 * Output lines (hex addresses, decimal counts):
 *   B id vaddr n_insns count in_range bytes(hex) sizes(comma-separated, one per insn)
 *   F block_id last_in_range_block_id count        (count of a foreign block under that caller)
 *   E events                                       (block executions counted in all)
 *
 * The declarations below are our own, written from QEMU's documented plugin API (the header
 * qemu-plugin.h, version 1, which Debian does not ship).
 */
#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the plugin API as used here (qemu 7.2, QEMU_PLUGIN_VERSION 1) ---- */
#define EXPORTED __attribute__((visibility("default")))
typedef uint64_t qemu_plugin_id_t;
typedef struct {
    const char *target_name;
    struct { int min; int cur; } version;
    bool system_emulation;
    union { struct { int smp_vcpus; int max_vcpus; } system; };
} qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*syscall_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num,
                             uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                             uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8);
extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, tb_trans_cb_t cb);
extern void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, vcpu_udata_cb_t cb,
                                                 enum qemu_plugin_cb_flags flags, void *userdata);
extern void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, syscall_cb_t cb);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, udata_cb_t cb, void *userdata);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
extern uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
extern struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
extern const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
extern size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
extern void qemu_plugin_outs(const char *string);

EXPORTED int qemu_plugin_version = 1;

/* ---- state (one vCPU: the projection runs single-threaded guests) ---- */
#define MAGIC 0xed6ea75c0ffee001ULL
#define MAX_RANGES 64

typedef struct Block {
    uint64_t vaddr;
    uint64_t count;
    uint32_t n_insns, n_bytes, id, gen;
    bool in_range;
    uint8_t *bytes;
    uint8_t *sizes;
    struct Block *next;  /* all blocks, for the dump */
} Block;

typedef struct { Block *block, *caller; uint64_t count; } Pair;

static Block *blocks;
static uint32_t n_blocks;
static uint64_t ranges[MAX_RANGES][2];
static int n_ranges;
static uint32_t gen = 1;          /* bumped when the ranges change: blocks re-check theirs */
static bool counting;
static uint64_t events;
static Block *caller;             /* the last in-range block executed */
static Pair *pairs;
static size_t pairs_cap, pairs_used;
static long marker_nr = 0x45a0;
static char out_path[4096];

static bool addr_in_ranges(uint64_t a)
{
    for (int i = 0; i < n_ranges; i++)
        if (a >= ranges[i][0] && a < ranges[i][1])
            return true;
    return false;
}

static size_t pair_slot(Block *b, Block *c)
{
    uintptr_t h = ((uintptr_t)b * 0x9e3779b97f4a7c15ULL) ^ ((uintptr_t)c * 0xc2b2ae3d27d4eb4fULL);
    size_t i = (h >> 17) & (pairs_cap - 1);
    while (pairs[i].block && !(pairs[i].block == b && pairs[i].caller == c))
        i = (i + 1) & (pairs_cap - 1);
    return i;
}

static void pairs_grow(void)
{
    Pair *old = pairs;
    size_t old_cap = pairs_cap;
    pairs_cap = old_cap ? old_cap * 2 : (1u << 16);
    pairs = calloc(pairs_cap, sizeof(Pair));
    if (!pairs) {
        fprintf(stderr, "blockcount: out of memory\n");
        abort();
    }
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].block)
            pairs[pair_slot(old[i].block, old[i].caller)] = old[i];
    free(old);
}

static void on_exec(unsigned int vcpu, void *udata)
{
    Block *b = udata;
    (void)vcpu;
    if (b->gen != gen) {
        b->in_range = addr_in_ranges(b->vaddr);
        b->gen = gen;
    }
    if (b->in_range) {
        caller = b;
        if (counting) {
            b->count++;
            events++;
        }
        return;
    }
    if (!counting)
        return;
    events++;
    if (!caller) {
        b->count++;
        return;
    }
    if (2 * (pairs_used + 1) > pairs_cap)
        pairs_grow();
    size_t i = pair_slot(b, caller);
    if (!pairs[i].block) {
        pairs[i].block = b;
        pairs[i].caller = caller;
        pairs_used++;
    }
    pairs[i].count++;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    Block *b = calloc(1, sizeof(Block));
    if (!b)
        abort();
    b->vaddr = qemu_plugin_tb_vaddr(tb);
    b->n_insns = (uint32_t)n;
    b->id = n_blocks++;
    b->sizes = malloc(n ? n : 1);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t s = qemu_plugin_insn_size(qemu_plugin_tb_get_insn(tb, i));
        b->sizes[i] = (uint8_t)s;
        total += s;
    }
    b->bytes = malloc(total ? total : 1);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        memcpy(b->bytes + off, qemu_plugin_insn_data(insn), b->sizes[i]);
        off += b->sizes[i];
    }
    b->n_bytes = (uint32_t)total;
    b->in_range = addr_in_ranges(b->vaddr);
    b->gen = gen;
    b->next = blocks;
    blocks = b;
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_exec, QEMU_PLUGIN_CB_NO_REGS, b);
}

static void dump(void)
{
    if (!out_path[0])
        return;
    FILE *f = fopen(out_path, "w");
    if (!f) {
        fprintf(stderr, "blockcount: cannot write %s\n", out_path);
        return;
    }
    /* a block is listed if it ran, or if it is the caller of a foreign block that ran */
    for (size_t i = 0; i < pairs_cap; i++)
        if (pairs[i].block)
            pairs[i].block->gen |= 0x80000000u, pairs[i].caller->gen |= 0x80000000u;
    for (Block *b = blocks; b; b = b->next) {
        bool listed = b->count || (b->gen & 0x80000000u);
        b->gen &= 0x7fffffffu;
        if (!listed)
            continue;
        fprintf(f, "B %u %llx %u %llu %d ", b->id, (unsigned long long)b->vaddr, b->n_insns,
                (unsigned long long)b->count, b->in_range ? 1 : 0);
        for (uint32_t k = 0; k < b->n_bytes; k++)
            fprintf(f, "%02x", b->bytes[k]);
        fputc(' ', f);
        for (uint32_t k = 0; k < b->n_insns; k++)
            fprintf(f, k ? ",%u" : "%u", b->sizes[k]);
        fputc('\n', f);
    }
    for (size_t i = 0; i < pairs_cap; i++)
        if (pairs[i].block && pairs[i].count)
            fprintf(f, "F %u %u %llu\n", pairs[i].block->id, pairs[i].caller->id,
                    (unsigned long long)pairs[i].count);
    fprintf(f, "E %llu\n", (unsigned long long)events);
    fclose(f);
}

static void reset_counts(void)
{
    for (Block *b = blocks; b; b = b->next)
        b->count = 0;
    memset(pairs, 0, pairs_cap * sizeof(Pair));
    pairs_used = 0;
    events = 0;
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1,
                       uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6,
                       uint64_t a7, uint64_t a8)
{
    (void)id; (void)vcpu; (void)a5; (void)a6; (void)a7; (void)a8;
    if (num != marker_nr || a1 != MAGIC)
        return;
    switch (a2) {
    case 1:
        if (n_ranges < MAX_RANGES && a3 < a4) {
            ranges[n_ranges][0] = a3;
            ranges[n_ranges][1] = a4;
            n_ranges++;
            gen = (gen + 1) & 0x7fffffffu;
            if (!gen)
                gen = 1;
        }
        break;
    case 2:
        reset_counts();
        counting = true;
        break;
    case 3:
        counting = false;
        dump();
        break;
    default:
        break;
    }
}

EXPORTED int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                 char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (!strncmp(argv[i], "out=", 4)) {
            snprintf(out_path, sizeof out_path, "%s", argv[i] + 4);
        } else if (!strncmp(argv[i], "sys=", 4)) {
            marker_nr = strtol(argv[i] + 4, NULL, 0);
        } else {
            fprintf(stderr, "blockcount: unknown argument %s (want out=PATH, sys=NR)\n", argv[i]);
            return -1;
        }
    }
    pairs_grow();
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    return 0;
}
