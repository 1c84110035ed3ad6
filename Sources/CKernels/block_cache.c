#include "metaq_kernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

/* The tensor-buffer block cache and memory counters (see BlockCache and TensorMemory in
   Tensor.swift). In C because every tensor buffer passes through here twice: static state
   needs no lazy initialisation (Swift globals check a once-token on every access) and a
   pthread mutex costs less than NSLock. */

struct metaq_block_cache {
    pthread_mutex_t lock;
    long minimum_bytes, capacity_bytes, held;
    int follows_peak;                          /* the shared cache: see effective_capacity */
    int shelves;                               /* sizes in use, at most METAQ_CACHE_SIZES */
    long sizes[METAQ_CACHE_SIZES];
    void **blocks[METAQ_CACHE_SIZES];          /* a stack of free blocks per size */
    int counts[METAQ_CACHE_SIZES], capacities[METAQ_CACHE_SIZES];
};

static metaq_block_cache shared_cache = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .minimum_bytes = METAQ_CACHE_MINIMUM_BYTES,
    .capacity_bytes = METAQ_CACHE_CAPACITY_BYTES,
    .follows_peak = 1,
};

/* The shared cache holds up to the most tensor memory the process has had live at once (at
   most a quarter of physical memory), when that is more than its fixed capacity: a step of a
   large model (ResNet-12 on 84x84 images: about 5 GB) frees its activations at the end and
   allocates the same sizes again in the next step, and blocks larger than malloc keeps (tens
   of MB) would otherwise go back to the kernel and be faulted in and zeroed again, page by
   page (measured: 15% of a ResNet-12 episode). The process reaches that peak every step
   anyway; between steps it keeps it. */
static long effective_capacity(const metaq_block_cache *c) {
    if (!c->follows_peak) return c->capacity_bytes;
    static long quarter;
    if (!quarter) quarter = sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE) / 4;
    long peak = metaq_memory_peak();
    if (peak > quarter) peak = quarter;
    return peak > c->capacity_bytes ? peak : c->capacity_bytes;
}

metaq_block_cache *metaq_block_cache_shared(void) { return &shared_cache; }

metaq_block_cache *metaq_block_cache_create(void) {
    metaq_block_cache *c = calloc(1, sizeof *c);
    if (!c) abort();
    pthread_mutex_init(&c->lock, NULL);
    c->minimum_bytes = METAQ_CACHE_MINIMUM_BYTES;
    c->capacity_bytes = METAQ_CACHE_CAPACITY_BYTES;
    return c;
}

void metaq_block_cache_destroy(metaq_block_cache *c) {
    /* The blocks still held are not freed: they may belong to the caller (tests). */
    for (int i = 0; i < c->shelves; i++) free(c->blocks[i]);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static int shelf_of(const metaq_block_cache *c, long bytes) {
    for (int i = 0; i < c->shelves; i++)
        if (c->sizes[i] == bytes) return i;
    return -1;
}

void *metaq_block_cache_take(metaq_block_cache *c, long bytes) {
    if (bytes < c->minimum_bytes) return NULL;
    void *block = NULL;
    pthread_mutex_lock(&c->lock);
    int i = shelf_of(c, bytes);
    if (i >= 0 && c->counts[i] > 0) {
        block = c->blocks[i][--c->counts[i]];
        c->held -= bytes;
    }
    pthread_mutex_unlock(&c->lock);
    return block;
}

static int push(metaq_block_cache *c, int i, void *block) {
    if (c->counts[i] == c->capacities[i]) {
        int capacity = c->capacities[i] ? 2 * c->capacities[i] : 8;
        void **grown = realloc(c->blocks[i], sizeof(void *) * (size_t)capacity);
        if (!grown) return 0;
        c->blocks[i] = grown;
        c->capacities[i] = capacity;
    }
    c->blocks[i][c->counts[i]++] = block;
    return 1;
}

int metaq_block_cache_keep(metaq_block_cache *c, void *block, long bytes) {
    if (bytes < c->minimum_bytes) return 0;
    int kept = 0;
    const long capacity = effective_capacity(c);
    pthread_mutex_lock(&c->lock);
    if (c->held + bytes > capacity) {
        /* Make room by freeing blocks of other sizes (any will do: training repeats its
           sizes every step). */
        for (int i = 0; i < c->shelves && c->held + bytes > capacity; i++) {
            if (c->sizes[i] == bytes) continue;
            for (int j = 0; j < c->counts[i]; j++) free(c->blocks[i][j]);
            c->held -= c->sizes[i] * c->counts[i];
            c->counts[i] = 0;
        }
    }
    if (c->held + bytes <= capacity) {
        int i = shelf_of(c, bytes);
        if (i < 0 && c->shelves < METAQ_CACHE_SIZES) {
            i = c->shelves++;
            c->sizes[i] = bytes;
        } else if (i < 0) {
            /* A size no block is waiting in gives up its shelf. */
            for (int j = 0; j < c->shelves; j++)
                if (c->counts[j] == 0) { i = j; c->sizes[i] = bytes; break; }
        }
        if (i >= 0 && push(c, i, block)) {
            c->held += bytes;
            kept = 1;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return kept;
}

/* Bytes held by tensor buffers, now and at most since the last reset. */
static _Atomic long live_bytes, peak_bytes;

void metaq_memory_allocated(long bytes) {
    long now = atomic_fetch_add_explicit(&live_bytes, bytes, memory_order_relaxed) + bytes;
    long seen = atomic_load_explicit(&peak_bytes, memory_order_relaxed);
    while (now > seen &&
           !atomic_compare_exchange_weak_explicit(&peak_bytes, &seen, now, memory_order_relaxed, memory_order_relaxed)) {
    }
}

void metaq_memory_freed(long bytes) { atomic_fetch_sub_explicit(&live_bytes, bytes, memory_order_relaxed); }
long metaq_memory_live(void) { return atomic_load_explicit(&live_bytes, memory_order_relaxed); }
long metaq_memory_peak(void) { return atomic_load_explicit(&peak_bytes, memory_order_relaxed); }
void metaq_memory_reset_peak(void) {
    atomic_store_explicit(&peak_bytes, atomic_load_explicit(&live_bytes, memory_order_relaxed), memory_order_relaxed);
}
