/*
 * lshparallel.c
 *	  The build's second pass with parallel workers: the workers and the leader
 *	  share one parallel heap scan and hash their rows; the workers send their
 *	  hashed rows to the leader, which alone writes pages.
 *
 * PostgreSQL 15 offers the parallel index build API (index.c's
 * ii_ParallelWorkers) to btree only, so the build asks the planner itself
 * (plan_create_index_workers: max_parallel_maintenance_workers, the table's
 * parallel_workers option, its size, parallel-safe index expressions) and runs
 * its own parallel context, as nbtsort.c does for btree.
 *
 * What is parallel, and why only that: the first pass stays serial (its
 * reservoir sample depends on the order the rows come in, and the sample
 * decides the lists), and so does learning, which works on the sample in
 * memory.  The second pass's per-row work -- reading the heap, detoasting,
 * checking, hashing (lsh_hash_batch, the two-level assignment through
 * kernel_matmul) and measuring each row for its list's bounds -- is what
 * grows with the table, and it is split: every participant runs
 * lshbuildhash.c on the blocks the parallel scan hands it.
 *
 * Only the leader writes: a worker sends each hashed chunk (lists, bounds
 * geometry, entries) through its own shm_mq, and the leader adds the
 * rows to its page images (lsh_build_add_rows) between its own chunks and
 * after its share of the scan.  So the pages are written and WAL-logged as a
 * serial build writes them, the memory is a serial build's (the page images
 * are the leader's alone; a worker holds one chunk), and every row gets the
 * list a serial build gives it: the hash is the same function on the same
 * parameters (copied to the workers), and the bounds are minima and maxima,
 * whatever the order.  What differs is the order of the entries within a
 * list, which follows the order chunks reach the leader; nothing reads
 * meaning into it (lsh.h: chain order carries no meaning).
 *
 * Errors: a worker's ERROR reaches the leader through the parallel
 * infrastructure (the leader's CHECK_FOR_INTERRUPTS while it waits, or
 * WaitForParallelWorkersToFinish) and fails the CREATE INDEX; a cancel of the
 * leader ends the workers with its transaction.  A worker that never started
 * leaves its share to the others (the scan hands blocks out on demand), and
 * WaitForParallelWorkersToFinish reports it.
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "lshbuild.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/shm_mq.h"
#include "storage/shm_toc.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#define LSH_KEY_SHARED			UINT64CONST(0xFC7B000000000001)
#define LSH_KEY_PARAMS			UINT64CONST(0xFC7B000000000002)
#define LSH_KEY_QUEUES			UINT64CONST(0xFC7B000000000003)
#define LSH_KEY_QUERY_TEXT		UINT64CONST(0xFC7B000000000004)

/* A worker's queue holds about two chunks, so it hashes on while the leader drains. */
#define LSH_QUEUE_MIN			((Size) 64 * 1024)
#define LSH_QUEUE_MAX			((Size) 16 * 1024 * 1024)

typedef struct LshParallelShared
{
	/* set by the leader before the workers start */
	Oid			heaprelid;
	Oid			indexrelid;
	bool		isconcurrent;
	int			dim;
	int32		model_id;
	LshMetaPageData meta;		/* the learned shape; the parameters are LSH_KEY_PARAMS */
	Size		queue_size;

	/* the workers' heap tuples, added as each finishes */
	slock_t		mutex;
	double		reltuples;

	/* the ParallelTableScanDescData follows, at BUFFERALIGN(sizeof(LshParallelShared)) */
} LshParallelShared;

#define LshParallelScan(shared) \
	((ParallelTableScanDesc) ((char *) (shared) + BUFFERALIGN(sizeof(LshParallelShared))))

/* The leader's view: the context and one queue per launched worker (NULL once it detached). */
typedef struct LshParallelLeader
{
	ParallelContext *pcxt;
	int			nqueues;
	shm_mq_handle **queues;
} LshParallelLeader;

PGDLLEXPORT void lsh_parallel_build_main(dsm_segment *seg, shm_toc *toc);

/*
 * A worker's message: one hashed chunk, as contiguous arrays (so that the
 * leader reads them in place): n, lists[n], resid[n], norm[n], then the n
 * entries.  Every part is a multiple of 4 bytes, so each stays aligned for
 * its type.
 */
static Size
message_size(int n, Size entry_size)
{
	return sizeof(int32) + (Size) n * (sizeof(int) + 2 * sizeof(float) + entry_size);
}

/* bs->emit of a worker: send the hashed chunk to the leader. */
static void
worker_emit(LshBuildState *bs)
{
	shm_mq_handle *mqh = (shm_mq_handle *) bs->emit_arg;
	int32		n = bs->nchunk;
	shm_mq_iovec iov[5];
	shm_mq_result res;

	iov[0].data = (const char *) &n;
	iov[0].len = sizeof(int32);
	iov[1].data = (const char *) bs->chunk_lists;
	iov[1].len = sizeof(int) * n;
	iov[2].data = (const char *) bs->chunk_resid;
	iov[2].len = sizeof(float) * n;
	iov[3].data = (const char *) bs->chunk_norm;
	iov[3].len = sizeof(float) * n;
	iov[4].data = bs->chunk_entries;
	iov[4].len = bs->entry_size * n;
	res = shm_mq_sendv(mqh, iov, 5, false, true);
	if (res != SHM_MQ_SUCCESS)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("lsh parallel build: the leader stopped receiving rows")));
}

/* Add one worker message's rows to the leader's page images. */
static void
add_message(LshBuildState *bs, Size nbytes, const char *data)
{
	int32		n;
	const int  *lists;
	const float *resid;
	const float *norm;

	memcpy(&n, data, sizeof(int32));
	if (n <= 0 || n > LSH_HASH_CHUNK || nbytes != message_size(n, bs->entry_size))
		elog(ERROR, "lsh parallel build: message of %zu bytes for %d rows", nbytes, n);
	lists = (const int *) (data + sizeof(int32));
	resid = (const float *) (lists + n);
	norm = resid + n;
	lsh_build_add_rows(bs, n, lists, resid, norm, (const char *) (norm + n));
}

/*
 * Receive what the workers have sent.  Without wait: whatever is there now
 * (between the leader's own chunks).  With wait: until every worker has
 * detached, sleeping on the latch the queues set.
 */
static void
drain(LshParallelLeader *pl, LshBuildState *bs, bool wait)
{
	for (;;)
	{
		bool		got = false;
		int			live = 0;

		for (int i = 0; i < pl->nqueues; i++)
		{
			Size		nbytes;
			void	   *data;
			shm_mq_result res;

			if (pl->queues[i] == NULL)
				continue;
			res = shm_mq_receive(pl->queues[i], &nbytes, &data, true);
			if (res == SHM_MQ_SUCCESS)
			{
				add_message(bs, nbytes, data);
				got = true;
				live++;
			}
			else if (res == SHM_MQ_WOULD_BLOCK)
				live++;
			else
			{
				/* done, failed or never started: WaitForParallelWorkersToFinish tells which */
				shm_mq_detach(pl->queues[i]);
				pl->queues[i] = NULL;
			}
		}
		if (live == 0)
			return;
		if (!got)
		{
			if (!wait)
				return;
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1,
							 WAIT_EVENT_PARALLEL_CREATE_INDEX_SCAN);
			ResetLatch(MyLatch);
		}
		CHECK_FOR_INTERRUPTS();
	}
}

/* bs->emit of the leader: its own chunk into the page images, then the workers' rows. */
static void
leader_emit(LshBuildState *bs)
{
	lsh_build_add_chunk(bs);
	drain((LshParallelLeader *) bs->emit_arg, bs, false);
}

/*
 * Run the second pass with workers, the leader taking part: true and the
 * heap's tuple count when it did, false (nothing done) when the planner gives
 * no worker or none could start, and the caller runs the pass alone.
 */
bool
lsh_parallel_hash(LshBuildState *bs, Relation heap, IndexInfo *indexInfo, double *reltuples)
{
	LshMetaPageData *meta = &bs->state.meta;
	int			request;
	ParallelContext *pcxt;
	Snapshot	snapshot;
	Size		est_shared;
	Size		est_params;
	Size		queue_size;
	Size		querylen = 0;
	LshParallelShared *shared;
	char	   *queues;
	LshParallelLeader pl;
	TableScanDesc scan;
	double		leader_tuples;

	request = plan_create_index_workers(RelationGetRelid(heap), RelationGetRelid(bs->index));
	if (request <= 0)
		return false;

	EnterParallelMode();
	pcxt = CreateParallelContext("fct", "lsh_parallel_build_main", request);

	/* as nbtsort.c: every tuple for a plain build, an MVCC snapshot for CONCURRENTLY */
	snapshot = indexInfo->ii_Concurrent ? RegisterSnapshot(GetTransactionSnapshot()) : SnapshotAny;

	est_shared = add_size(BUFFERALIGN(sizeof(LshParallelShared)),
						  table_parallelscan_estimate(heap, snapshot));
	est_params = sizeof(float) * (Size) Max(meta->nparams, 1);
	queue_size = MAXALIGN(2 * message_size(LSH_HASH_CHUNK, bs->entry_size));
	queue_size = Max(Min(queue_size, LSH_QUEUE_MAX), LSH_QUEUE_MIN);
	shm_toc_estimate_chunk(&pcxt->estimator, est_shared);
	shm_toc_estimate_chunk(&pcxt->estimator, est_params);
	shm_toc_estimate_chunk(&pcxt->estimator, mul_size(queue_size, request));
	shm_toc_estimate_keys(&pcxt->estimator, 3);
	if (debug_query_string)
	{
		querylen = strlen(debug_query_string);
		shm_toc_estimate_chunk(&pcxt->estimator, querylen + 1);
		shm_toc_estimate_keys(&pcxt->estimator, 1);
	}

	InitializeParallelDSM(pcxt);
	if (pcxt->seg == NULL)
	{
		/* no dynamic shared memory to be had: the serial pass */
		if (IsMVCCSnapshot(snapshot))
			UnregisterSnapshot(snapshot);
		DestroyParallelContext(pcxt);
		ExitParallelMode();
		return false;
	}

	shared = shm_toc_allocate(pcxt->toc, est_shared);
	shared->heaprelid = RelationGetRelid(heap);
	shared->indexrelid = RelationGetRelid(bs->index);
	shared->isconcurrent = indexInfo->ii_Concurrent;
	shared->dim = bs->dim;
	shared->model_id = bs->model_id;
	shared->meta = *meta;
	shared->queue_size = queue_size;
	SpinLockInit(&shared->mutex);
	shared->reltuples = 0;
	table_parallelscan_initialize(heap, LshParallelScan(shared), snapshot);
	shm_toc_insert(pcxt->toc, LSH_KEY_SHARED, shared);
	{
		float	   *params = shm_toc_allocate(pcxt->toc, est_params);

		if (meta->nparams > 0)
			memcpy(params, bs->state.params, sizeof(float) * meta->nparams);
		shm_toc_insert(pcxt->toc, LSH_KEY_PARAMS, params);
	}
	queues = shm_toc_allocate(pcxt->toc, mul_size(queue_size, request));
	for (int i = 0; i < request; i++)
	{
		shm_mq	   *mq = shm_mq_create(queues + queue_size * i, queue_size);

		shm_mq_set_receiver(mq, MyProc);
	}
	shm_toc_insert(pcxt->toc, LSH_KEY_QUEUES, queues);
	if (debug_query_string)
	{
		char	   *query = shm_toc_allocate(pcxt->toc, querylen + 1);

		memcpy(query, debug_query_string, querylen + 1);
		shm_toc_insert(pcxt->toc, LSH_KEY_QUERY_TEXT, query);
	}

	LaunchParallelWorkers(pcxt);
	if (pcxt->nworkers_launched == 0)
	{
		WaitForParallelWorkersToFinish(pcxt);
		if (IsMVCCSnapshot(snapshot))
			UnregisterSnapshot(snapshot);
		DestroyParallelContext(pcxt);
		ExitParallelMode();
		return false;
	}
	ereport(DEBUG1,
			(errmsg("lsh index \"%s\" hashes its rows with %d parallel workers",
					RelationGetRelationName(bs->index), pcxt->nworkers_launched)));

	/* the launched workers are the first nworkers_launched; their handles detect a death */
	pl.pcxt = pcxt;
	pl.nqueues = pcxt->nworkers_launched;
	pl.queues = palloc(sizeof(shm_mq_handle *) * pl.nqueues);
	for (int i = 0; i < pl.nqueues; i++)
		pl.queues[i] = shm_mq_attach((shm_mq *) (queues + queue_size * i), pcxt->seg,
									 pcxt->worker[i].bgwhandle);

	/* the leader's share, then the rest of the workers' rows */
	bs->emit = leader_emit;
	bs->emit_arg = &pl;
	scan = table_beginscan_parallel(heap, LshParallelScan(shared));
	leader_tuples = table_index_build_scan(heap, bs->index, indexInfo, true, true,
										   lsh_build_hash_callback, bs, scan);
	lsh_build_flush_chunk(bs);
	drain(&pl, bs, true);
	bs->emit = lsh_build_add_chunk;
	bs->emit_arg = NULL;

	/* rethrows a worker's error; after it every worker has added its count */
	WaitForParallelWorkersToFinish(pcxt);
	*reltuples = leader_tuples + shared->reltuples;

	if (IsMVCCSnapshot(snapshot))
		UnregisterSnapshot(snapshot);
	DestroyParallelContext(pcxt);
	ExitParallelMode();
	return true;
}

/* A worker: join the scan, hash its share, send it to the leader. */
void
lsh_parallel_build_main(dsm_segment *seg, shm_toc *toc)
{
	LshParallelShared *shared;
	const float *params;
	shm_mq	   *mq;
	shm_mq_handle *mqh;
	char	   *query;
	LOCKMODE	heap_lockmode;
	LOCKMODE	index_lockmode;
	Relation	heap;
	Relation	index;
	IndexInfo  *indexInfo;
	LshBuildState bs;
	TableScanDesc scan;
	double		tuples;

	query = shm_toc_lookup(toc, LSH_KEY_QUERY_TEXT, true);
	debug_query_string = query;
	pgstat_report_activity(STATE_RUNNING, debug_query_string);

	shared = shm_toc_lookup(toc, LSH_KEY_SHARED, false);
	params = shm_toc_lookup(toc, LSH_KEY_PARAMS, false);
	mq = (shm_mq *) ((char *) shm_toc_lookup(toc, LSH_KEY_QUEUES, false) +
					 shared->queue_size * ParallelWorkerNumber);
	shm_mq_set_sender(mq, MyProc);
	mqh = shm_mq_attach(mq, seg, NULL);

	/* the locks index.c took in the leader (the lock group shares them) */
	if (!shared->isconcurrent)
	{
		heap_lockmode = ShareLock;
		index_lockmode = AccessExclusiveLock;
	}
	else
	{
		heap_lockmode = ShareUpdateExclusiveLock;
		index_lockmode = RowExclusiveLock;
	}
	heap = table_open(shared->heaprelid, heap_lockmode);
	index = index_open(shared->indexrelid, index_lockmode);
	indexInfo = BuildIndexInfo(index);
	indexInfo->ii_Concurrent = shared->isconcurrent;

	/* the leader's learned state: the same parameters give the same lists */
	memset(&bs, 0, sizeof(bs));
	bs.index = index;
	bs.metric = lsh_index_metric(index);
	bs.family = lsh_options_family(index);
	bs.opts = (LshOptions *) index->rd_options;
	bs.has_model = true;
	bs.dim = shared->dim;
	bs.model_id = shared->model_id;
	bs.state.meta = shared->meta;
	if (bs.state.meta.nparams > 0)
	{
		bs.state.params = palloc(sizeof(float) * bs.state.meta.nparams);
		memcpy(bs.state.params, params, sizeof(float) * bs.state.meta.nparams);
	}
	if (bs.state.meta.learned && bs.state.meta.family == LSH_FAMILY_KMEANS)
	{
		lsh_kmeans_state_init(&bs.state);
		lsh_code_state_init(&bs.state);
	}
	bs.tmpcxt = AllocSetContextCreate(CurrentMemoryContext, "lsh build tuple", ALLOCSET_DEFAULT_SIZES);
	lsh_build_chunk_init(&bs);
	bs.emit = worker_emit;
	bs.emit_arg = mqh;

	scan = table_beginscan_parallel(heap, LshParallelScan(shared));
	tuples = table_index_build_scan(heap, index, indexInfo, true, false,
									lsh_build_hash_callback, &bs, scan);
	lsh_build_flush_chunk(&bs);

	SpinLockAcquire(&shared->mutex);
	shared->reltuples += tuples;
	SpinLockRelease(&shared->mutex);
	shm_mq_detach(mqh);

	index_close(index, index_lockmode);
	table_close(heap, heap_lockmode);
}
