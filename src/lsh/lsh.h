/*
 * lsh.h
 *	  The lsh index access method: learned hash partitions over embeddings,
 *	  multi-probe ordered scans with exact re-ranking.
 *
 * Design (the invariants the files around this header keep)
 * ---------------------------------------------------------
 *
 * A hash family maps every vector to one bucket (a "list") and ranks the
 * buckets for a query from most to least promising.  The default family,
 * "kmeans", learns its hash function at build time from a sample: a k-means
 * partition (k-means LSH, Paulevé, Jégou and Amsaleg 2010).  For inner product
 * the centres are learned by spherical k-means on the directions, and a list
 * is ranked for a query by its members' mean norm times the cosine with its
 * centre, because norms are spread (log-normal) and inner-product order is
 * not cosine order.  Where the norms follow the directions the sample is
 * first split into norm ranges (equal-count quantiles of the norm, as in
 * norm-ranging LSH), each with its own centres: the build measures which
 * (lshranges.c).
 * (Plain L2 k-means on such data makes a few low-norm centres that attract
 * most points, and ranks them badly.)
 * The classic data-independent families are options for comparison:
 * "simple" (sign random projections of the norm-augmented vector, simple-LSH)
 * and "wta" (winner-take-all hashing).  Every row is stored once, in the
 * bucket it hashes to; a query reads buckets and re-ranks the rows it finds
 * exactly (a coded entry's row, the executor re-ranks from the heap).  For
 * k-means each list's directory item keeps bounds on how far
 * its members lie from its centre (lshbound.c; how far a member may point
 * towards a query is in a unit the build measures, lshcalibrate.c), and the
 * scan is ordered: it
 * reads lists in the order of their bounds and returns a row only when no
 * unread list's bound can beat it (lshscan.c), so rows come out in distance
 * order and a WHERE filter the index does not see still gets correct rows.
 * The comparison families probe their best-ranked buckets (multi-probe).
 *
 * From LSH_TWO_LEVEL_MIN_LISTS lists per norm range, a vector is not compared
 * with every centre: the lists are grouped under coarse centres and a vector
 * goes to the nearest list of its few nearest coarse cells (lshtwolevel.c),
 * so the build and inserts cost about sqrt(lists) products a row instead of
 * lists.  Whatever the assignment, it is one function (lsh_hash_batch) for
 * the build, every insert and fct_lsh_verify, with kernel_matmul's products:
 * an entry is always in the list its vector hashes to.  A query still ranks
 * every list (lsh_rank_lists): the bounds, not the assignment, make the
 * ordered scan correct.
 *
 * Pages:
 *	 block 0            metapage (LshMetaPageData)
 *	 blocks 1..         parameter pages, then directory pages
 *	 then               entry pages, chained per list through LshPageOpaque.next
 *
 * Parameter pages hold the family's learned or drawn parameters (centres,
 * projections, permutations) as one float array spread over pages; they are
 * written once by the build and never change (REINDEX writes a new relfilenode).
 * Directory pages hold one LshListItem per list: the first page of the list's
 * chain, the page where an insert starts looking for room, and the list's
 * bounds (which only widen: an insert widens them before writing entries).  Entry pages hold
 * LshEntry items: a heap TID, then in a learned k-means index (format 4) the
 * vector's 8-bit code (LshCode, lshcode.c) and nothing else; in every other
 * index (simple, wta, unlearned, a dimension too large for codes) the vector
 * (no side information, no model id: the metapage holds those once).  A scan
 * of a coded index returns each row with its code's lower bound on the
 * distance and lets the executor compute the exact distance from the heap
 * row and reorder (xs_recheckorderby, lshscan.c): the entries are a quarter
 * of the vector's bytes, so a query reads a quarter of the pages and the
 * index is smaller than the table.  Formats 2 (no codes) and 3 (vector and
 * code in each entry) are still read, by their vectors (the exact path).
 *
 * Chains: a list's pages form a singly linked chain from LshListItem.head.
 * New pages are linked in at the head (the directory item and the new page
 * change in one WAL record), so a chain only ever grows at its head; VACUUM
 * deletes items in place and points insert_page back at the first page that
 * gained room, so inserts reuse the space.  Chain order carries no meaning.
 *
 * Inserts are buffered per transaction (lshpending.c) and written in batches,
 * at the latest before the commit record: a committed row always has its
 * entry; the backend writes its buffered rows before it reads the index.
 *
 * Locking: at most one entry page is locked at a time, except that an insert
 * that adds a page holds the directory page and the new page together.  Scans
 * copy what they need out of a page before unlocking it and keep no pins, so
 * they are safe with MVCC snapshots (a TID recycled by VACUUM after the scan
 * read it belongs to a tuple the scan's snapshot cannot see).
 *
 * An index built on an empty table (or fewer rows than one list needs) is
 * "unlearned": one list, no parameters; its dimension and model are fixed by the
 * first vector inserted, and a scan reads every entry (exact).  REINDEX learns
 * the hash function from the rows present then.
 */
#ifndef FCT_LSH_H
#define FCT_LSH_H

#include "postgres.h"

#include "access/amapi.h"
#include "access/generic_xlog.h"
#include "access/itup.h"
#include "access/reloptions.h"
#include "common/pg_prng.h"
#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"
#include "storage/bufmgr.h"
#include "utils/relcache.h"

#include "type/embedding.h"

#define LSH_MAGIC				0x4C534831	/* "LSH1" */
#define LSH_PAGE_VERSION		4	/* 2: per-list bounds in the directory;
									 * 3: entries with vector and code;
									 * 4: coded entries without the vector */
#define LSH_PAGE_VERSION_MIN	2	/* the oldest format still read */
#define LSH_METAPAGE_BLKNO		0

/*
 * Largest dimension an index accepts: one entry (TID + vector) must fit on a
 * page, and so must one list's centre.
 */
#define LSH_MAX_DIM				2000
#define LSH_MAX_LISTS			32768
#define LSH_MAX_NORM_RANGES		16
#define LSH_MAX_BITS			16
/* wta: LSH_WTA_K coordinates per window, LSH_WTA_K^windows lists */
#define LSH_WTA_K				4
#define LSH_MAX_WTA_WINDOWS		7	/* 4^7 = 16384 <= LSH_MAX_LISTS */

/* Rows hashed per call (build, buffered inserts). */
#define LSH_HASH_CHUNK			1024
/* Rows per matrix product when assigning to centres (products stay in cache). */
#define LSH_ASSIGN_BLOCK		256
/* Two-level assignment (lshtwolevel.c): from this many lists per norm range */
#define LSH_TWO_LEVEL_MIN_LISTS	1024
#define LSH_COARSE_PROBES		4	/* candidate cells of a new index */
#define LSH_MAX_COARSE_PROBES	16

/* Strategy and support numbers of the opclasses. */
#define LSH_DISTANCE_STRATEGY	1
#define LSH_METRIC_PROC			1
#define LSH_NPROCS				1

/* Metrics (what support function 1 of an opclass returns). */
typedef enum LshMetric
{
	LSH_METRIC_IP = 1,			/* <#>: negative inner product */
	LSH_METRIC_COSINE = 2,		/* <=>: cosine distance */
	LSH_METRIC_L2 = 3			/* <->: Euclidean distance */
} LshMetric;

/* Hash families. */
typedef enum LshFamily
{
	LSH_FAMILY_KMEANS = 1,		/* learned k-means partition (default) */
	LSH_FAMILY_SIMPLE = 2,		/* sign projections of norm-augmented vectors */
	LSH_FAMILY_WTA = 3			/* winner-take-all */
} LshFamily;

/* Page types (LshPageOpaque.flags). */
#define LSH_PAGE_META			1
#define LSH_PAGE_PARAM			2
#define LSH_PAGE_DIR			3
#define LSH_PAGE_ENTRY			4

#define LSH_PAGE_ID				0xFC15

typedef struct LshPageOpaqueData
{
	BlockNumber next;			/* next page of the chain, or InvalidBlockNumber */
	uint16		flags;			/* LSH_PAGE_* */
	uint16		page_id;		/* LSH_PAGE_ID, for tools */
} LshPageOpaqueData;

typedef LshPageOpaqueData *LshPageOpaque;

#define LshPageGetOpaque(page) ((LshPageOpaque) PageGetSpecialPointer(page))

typedef struct LshMetaPageData
{
	uint32		magic;
	uint32		version;
	uint16		metric;			/* LshMetric */
	uint16		family;			/* LshFamily */
	int32		dim;			/* 0 while unknown (empty unlearned index) */
	int32		model_id;		/* meaningful when has_model */
	bool		has_model;		/* dim and model_id are fixed */
	bool		learned;		/* parameters exist; false: one list, exact */
	int32		nlists;
	int32		nranges;		/* norm ranges (kmeans + ip, simple + ip) */
	int32		bits;			/* simple: hash bits per range */
	int32		windows;		/* wta: windows; wta_k: window width */
	int32		wta_k;
	int32		nparams;		/* floats in the parameter pages */
	BlockNumber param_start;
	BlockNumber dir_start;
	int32		ndirpages;
	int32		lists_per_dirpage;
	float8		build_tuples;	/* tuples indexed by the build */
	float4		range_upper[LSH_MAX_NORM_RANGES];	/* upper norm bound per range */
	/* appended: an index built before reads 0, flat (lshtwolevel.c) */
	int32		ncoarse;		/* kmeans: coarse cells, 0: every list compared */
	int32		coarse_probes;	/* kmeans: candidate cells per vector */
	/* appended: an index built before reads 0, "not measured" */
	float4		bound_unit;		/* kmeans: the bounds' scale per unit of
								 * fct.lsh_margin, measured at build
								 * (lshcalibrate.c); 0: 1 / sqrt(dim) */
	/* appended (format 3): an index built before reads 0, no codes */
	int32		code_bits;		/* kmeans: bits per dimension of an entry's
								 * code (lshcode.c), 0: entries without */
	/* appended: an index built before reads 0, cosine codes without aux */
	int32		code_cosine_aux;	/* cosine: an entry's aux is |x^|^2 - |c|^2,
									 * for the quadratic bound (lshcode.c) */
	/* appended: an index built before reads 0, the allowance s |r| */
	int32		bound_rms;		/* kmeans: the lists' bounds allow <q^, r> up
								 * to a multiple of the list's rrms
								 * (lshbound.c), and bound_unit was measured
								 * for that */
} LshMetaPageData;

typedef LshMetaPageData *LshMetaPage;

#define LshPageGetMeta(page) ((LshMetaPage) PageGetContents(page))

/*
 * One list in the directory.  The bounds (k-means family, lshbound.c) cover
 * every member ever added: rmin > rmax while there is none.
 */
typedef struct LshListItem
{
	BlockNumber head;			/* first page of the chain, or Invalid */
	BlockNumber insert_page;	/* where inserts start looking, or Invalid */
	float4		rmin;			/* smallest residual norm of a member */
	float4		rmax;			/* largest residual norm of a member */
	float4		maxnorm;		/* largest norm of a member */
	/* appended in the item's alignment padding: an index built before reads 0 */
	float4		rrms;			/* root mean square residual norm of the
								 * members the build added (meta.bound_rms):
								 * the list's spread, not a bound, so inserts
								 * leave it and REINDEX refreshes it */
} LshListItem;

/*
 * One indexed row: the heap TID, then the vector x[dim] when the index's
 * entries hold vectors (lsh_entry_has_vector), then the code when it has
 * codes (lsh_entry_code).
 */
typedef struct LshEntry
{
	ItemPointerData heap_tid;
	uint16		unused;
	float4		x[FLEXIBLE_ARRAY_MEMBER];
} LshEntry;

/* An entry with the vector and no code (format 2, or an index without codes) */
#define LSH_ENTRY_SIZE(dim)	(offsetof(LshEntry, x) + sizeof(float4) * (Size) (dim))

/*
 * Whether the index's entries hold the vector: every index but a coded one
 * of format 4 (format 3 kept the vector before the code).
 */
static inline bool
lsh_entry_has_vector(const LshMetaPageData *meta)
{
	return meta->code_bits == 0 || meta->version < 4;
}

/*
 * The code of an entry of an index with codes (lshcode.c): the exact size of
 * what the code leaves out, a per-metric term, and the code, padded to 4
 * bytes.  lsh_entry_size(meta) is an entry's size whatever it holds.
 */
typedef struct LshCode
{
	float4		err;			/* |r - r^|, rounded up */
	float4		aux;			/* l2: 2 <c, r^> + |r^|^2; ip: |x|; cosine: 0 */
	uint8		code[FLEXIBLE_ARRAY_MEMBER];
} LshCode;

/* Floats of parameters per parameter page. */
#define LSH_PARAM_FLOATS_PER_PAGE \
	((int) ((BLCKSZ - MAXALIGN(SizeOfPageHeaderData) - MAXALIGN(sizeof(LshPageOpaqueData))) / sizeof(float4)))

/* reloptions */
typedef struct LshOptions
{
	int32		vl_len_;
	int			lists;			/* 0: from the row count */
	int			norm_ranges;	/* 0: from the metric */
	int			bits;			/* 0: from the row count */
	int			family_offset;	/* string option */
} LshOptions;

/*
 * The per-backend image of an index's fixed part (metapage and parameters),
 * kept in rd_amcache.  Parameters never change for a given relfilenode, so the
 * cache is dropped only with the relcache entry; the metapage's has_model/dim
 * may change once (first insert into an unlearned index), so an image without
 * a model is re-read on use.
 */
typedef struct LshState
{
	LshMetaPageData meta;
	float	   *params;			/* meta.nparams floats */
	float	   *center_norm2;	/* kmeans: |c|^2 per list */
	float	   *list_norm;		/* kmeans, inner product: mean norm per list */
	/* kmeans with meta.ncoarse > 0 (lshtwolevel.c) */
	const float *coarse;		/* ncoarse x dim coarse centres */
	float	   *coarse_norm2;	/* |coarse|^2 per cell */
	int		   *cell_start;		/* first list of each cell, ncoarse + 1 */
	int		   *range_cells;	/* first cell of each norm range, nranges + 1 */
	/* kmeans with meta.code_bits > 0 (lshcode.c), in params */
	const float *code_lo;		/* per dimension: the codes' lowest value */
	const float *code_step;		/* per dimension: one code step */
} LshState;

/* GUCs */
extern int	lsh_probes;
extern int	lsh_max_candidates;
extern double lsh_margin;

/* lshhandler.c */
extern void lsh_init(void);

/* lshutils.c */
extern void lsh_options_init(void);
extern double lsh_gaussian(pg_prng_state *rng);
extern int	lsh_cmp_float(const void *a, const void *b);
extern bytea *lsh_options(Datum reloptions, bool validate);
extern LshFamily lsh_options_family(Relation index);
extern const char *lsh_family_name(LshFamily family);
extern const char *lsh_metric_name(LshMetric metric);
extern LshMetric lsh_index_metric(Relation index);
extern LshState *lsh_get_state(Relation index);
extern void lsh_check_value(Relation index, const LshMetaPageData *meta,
							const Embedding *e, bool is_query);
extern void lsh_fix_model(Relation index, const Embedding *e);

/* lshfamily.c */
extern float8 lsh_distance(LshMetric metric, const float *q, const float *x, int dim);
extern int	lsh_hash(const LshState *state, const float *x, float *work);
extern void lsh_hash_batch(const LshState *state, const float *x, int n, int *lists);
extern void lsh_rank_lists(const LshState *state, const float *q, float *scores);
extern void lsh_kmeans_state_init(LshState *state);
extern void lsh_hash_in_range(const LshState *state, int r, const float *xs,
							  int n, int *lists);

/* lshpage.c */
extern void lsh_init_page(Page page, uint16 flags);
extern Buffer lsh_new_buffer(Relation index, ForkNumber fork);
extern BlockNumber lsh_dir_block(const LshMetaPageData *meta, int list, OffsetNumber *off);
extern void lsh_read_directory(Relation index, const LshMetaPageData *meta,
							   LshListItem *items);
extern void lsh_read_list_item(Relation index, const LshMetaPageData *meta, int list,
							   LshListItem *item);

/* lshchain.c */
/*
 * Called once per page of a chain, the page pinned and locked; false stops
 * the walk.
 */
typedef bool (*lsh_page_visitor) (int list, Buffer buf, void *arg);
/*
 * Called once per page with entry NULL (maxoff: the page's line pointers, to
 * size buffers), then once per live entry of that page.
 */
typedef void (*lsh_entry_visitor) (int list, OffsetNumber maxoff,
								   const LshEntry *entry, void *arg);
extern int64 lsh_walk_pages(Relation index, int list, BlockNumber start, int lockmode,
							BufferAccessStrategy strategy,
							lsh_page_visitor visit, void *arg);
extern int64 lsh_walk_chain(Relation index, int list, BlockNumber head,
							lsh_entry_visitor visit, void *arg);
extern void lsh_add_entries(Relation index, const LshState *state, int list,
							const char *entries, int n, Size size,
							const float *resid, const float *norm);

/* lshbound.c */
extern bool lsh_has_bounds(const LshMetaPageData *meta);
extern void lsh_items_set_rms(LshListItem *items, int nlists, const float8 *sum_r2,
							  const int64 *count);
extern void lsh_item_init(LshListItem *item, BlockNumber head);
extern void lsh_member_geometry(const LshState *state, int list, const float *x,
								float *resid, float *norm);
extern bool lsh_item_widen(LshListItem *item, float resid, float norm);
extern bool lsh_item_covers(const LshListItem *item, float resid, float norm);
extern double lsh_bound_scale(const LshMetaPageData *meta);
extern void lsh_list_bounds(const LshState *state, const float *q,
							const LshListItem *items, float8 *lb, float8 *tie, float *work);
extern void lsh_list_bounds_at(const LshState *state, const float *q,
							   const LshListItem *items, float8 s, float8 *lb, float8 *tie,
							   float *work);
extern int lsh_query_own_list(const LshState *state, const float *q);
extern double lsh_needed_scale(const LshState *state, const float *q, int list,
							   const LshListItem *item, float8 dist);

/* lshcode.c (the codes) and lshcodebound.c (a query's bounds from them) */
extern Size lsh_entry_size(const LshMetaPageData *meta);
extern void lsh_code_learn(LshState *state, const float *sample, int n);
extern void lsh_code_state_init(LshState *state);
extern Size lsh_code_size(int dim);
extern void lsh_code_encode(const LshState *state, int list, const float *x, LshCode *out);
extern LshCode *lsh_entry_code(const LshMetaPageData *meta, const LshEntry *entry);
extern void lsh_make_entry(const LshState *state, int list, ItemPointer tid,
						   const float *x, LshEntry *entry);

/*
 * A query's side of the codes' lower bounds (lshcodebound.c): lsh_code_bounds_init
 * once per query, lsh_code_list per list read, lsh_code_bounds per page.
 */
typedef struct LshCodeQuery
{
	LshMetric	metric;
	int			dim;
	const float *q;
	float	   *w;				/* per-query weights of the code */
	int16	   *wi;				/* the same as integers: w ~ wscale wi */
	float8		wscale;
	float8		wconst;			/* <q~, r^> <= wconst + wscale sum_d wi[d] code[d] */
	float8		qrscale;		/* bound on the terms of that sum */
	float8		qn;				/* |q| */
	float8		rel;			/* relative rounding allowance */
	float8		abs;			/* absolute allowance (underflow) */
	/* per list (lsh_code_list) */
	bool		cosine_aux;		/* cosine: the codes' aux is there (meta.code_cosine_aux) */
	float8		k1;				/* l2: |q - c|^2; cosine: <q', c>; ip: <q, c> */
	float8		k1q;			/* cosine: |q' - c|^2, as 1 - 2 <q', c> + |c|^2 */
	float8		cn;				/* |c| */
	float8		rm;				/* the list's largest residual norm */
} LshCodeQuery;
extern void lsh_code_bounds_init(LshCodeQuery *cq, const LshState *state, const float *q);
extern void lsh_code_list(LshCodeQuery *cq, const LshState *state, int list,
						  const LshListItem *item, float8 qc);
extern void lsh_code_bounds(const LshCodeQuery *cq, const LshCode *const *codes, int n,
							float8 *out);
extern float8 lsh_operator_value(LshMetric metric, float8 dist);

/* lshlate.c: rows an ordered scan of coded entries finds late */
typedef struct LshLate LshLate;
extern LshLate *lsh_late_create(MemoryContext keep, MemoryContext cxt);
extern void lsh_late_returned(LshLate *late, ItemPointer tid, bool known, float8 dist);
extern bool lsh_late_distance(IndexScanDesc scan, LshLate *late, ItemPointer tid, float8 *value);
extern bool lsh_late_emitted_beyond(IndexScanDesc scan, LshLate *late, float8 dist, float8 maxret);
extern void lsh_late_reset(LshLate *late);
extern void lsh_late_free(LshLate *late);

/* lshcalibrate.c */
typedef struct LshCalibration LshCalibration;
extern LshCalibration *lsh_calibrate_begin(const LshState *state, const float *sample,
										   int n, double ntuples);
extern float lsh_calibrate_unit(const LshCalibration *cal, const LshState *state,
								const LshListItem *items);
extern float lsh_calibrate_end(LshCalibration *cal, const LshState *state,
							   const LshListItem *items);
/* A shape the build simulates scans of (lsh_calibrate_scan): its lists and bounds. */
typedef struct LshSimShape
{
	const LshState *state;
	const LshListItem *items;	/* the lists' bounds */
	const int  *lists;			/* each sample row's list */
	float		unit;			/* the bounds' unit (lsh_calibrate_unit) */
} LshSimShape;
extern void lsh_calibrate_scan(const LshCalibration *cal, const LshSimShape *shapes, int nshapes,
							   const float *sample, int n, double ntuples,
							   const float *extra, int nextra,
							   double rows[][3], double recall[][3]);

/* lshkmeans.c */
extern void lsh_kmeans(float *x, int n, int dim, int k, float *centers,
					   int iterations, uint64 seed, bool spherical);
extern void lsh_assign_nearest(const float *x, int n, int dim,
							   const float *centers, const float *center_norm2,
							   int k, int *out, float *work);
extern int	lsh_argmin_scores(float *row, const float *center_norm2, int k);
extern int	lsh_argmin(const float *row, int k);

/* lshtwolevel.c */
extern int	lsh_coarse_cells(int k, int probes);
extern void lsh_two_level_init(LshState *state);
extern void lsh_assign_two_level(const LshState *state, int r, const float *x,
								 int n, int *out);
extern int	lsh_learn_two_level(float *x, float *norms, int n, int dim, int k,
								int ncells, float *centers, float *coarse,
								int *starts, int iterations, uint64 seed,
								bool spherical);

/* lshbuild.c */
extern IndexBuildResult *lsh_build(Relation heap, Relation index, IndexInfo *indexInfo);
extern void lsh_buildempty(Relation index);
extern char *lsh_buildphasename(int64 phasenum);

/* lshinsert.c */
extern bool lsh_insert(Relation index, Datum *values, bool *isnull,
					   ItemPointer heap_tid, Relation heap,
					   IndexUniqueCheck checkUnique, bool indexUnchanged,
					   IndexInfo *indexInfo);

/* lshpending.c */
extern void lsh_pending_add(Relation index, const LshState *state, ItemPointer tid,
							const float *x, int dim);
extern void lsh_pending_flush(Relation index);
extern void lsh_pending_init(void);

/* lshscan.c */
/*
 * Lists an ordered scan reads before its first row when fct.lsh_probes is 0.
 * The second best list by bound often holds a near neighbour the margin's
 * bound would have let go: on the benchmark's five data sets (compare,
 * 300 queries) 2 lists instead of 1 took the defaults' recall@10 from
 * 0.953-0.993 to 0.968-0.994 at the same CPU but on the mixture (+20%, where
 * the query's own list holds its neighbours).  The build's simulated scans
 * (lshranges.c) read as many.
 */
#define LSH_BOUNDED_FIRST_LISTS 2

extern int	lsh_effective_probes(int nlists);
extern int	lsh_bounded_first_lists(void);
extern IndexScanDesc lsh_beginscan(Relation index, int nkeys, int norderbys);
extern void lsh_rescan(IndexScanDesc scan, ScanKey keys, int nkeys,
					   ScanKey orderbys, int norderbys);
extern bool lsh_gettuple(IndexScanDesc scan, ScanDirection dir);
extern void lsh_endscan(IndexScanDesc scan);

/* lshvacuum.c */
extern IndexBulkDeleteResult *lsh_bulkdelete(IndexVacuumInfo *info,
											 IndexBulkDeleteResult *stats,
											 IndexBulkDeleteCallback callback,
											 void *callback_state);
extern IndexBulkDeleteResult *lsh_vacuumcleanup(IndexVacuumInfo *info,
												IndexBulkDeleteResult *stats);

/* lshcost.c */
extern void lsh_costestimate(PlannerInfo *root, IndexPath *path, double loop_count,
							 Cost *indexStartupCost, Cost *indexTotalCost,
							 Selectivity *indexSelectivity, double *indexCorrelation,
							 double *indexPages);

/* lshvalidate.c */
extern bool lsh_validate(Oid opclassoid);

/* lshinspect.c: the SQL functions fct_lsh_stats and fct_lsh_verify */

#endif							/* FCT_LSH_H */
