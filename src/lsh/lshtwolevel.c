/*
 * lshtwolevel.c
 *	  Two-level (hierarchical) list assignment for the k-means family: the
 *	  lists of a norm range are grouped under coarse centres ("cells"), and a
 *	  vector's list is the nearest list among the cells of its
 *	  LSH_COARSE_PROBES nearest coarse centres.
 *
 * Why.  Comparing every vector with every list's centre makes the build and
 * the inserts cost rows x lists products, and the lists grow with the rows
 * (2 sqrt(rows) above a million): the build cost 109 exact scans at
 * 1,000,000 rows and inserts fell to 0.30x the table's rate.  With C cells of
 * about k / C lists, a vector costs C + P k / C products (P candidate cells),
 * least at C = sqrt(P k): at k = 2,000 lists and P = 4, 179 instead of 2,000.
 *
 * What a vector hashes to.  The two-level result is the definition, not an
 * approximation of the flat nearest centre that paths may disagree on: the
 * build, a single insert, the buffered inserts, fct_lsh_verify all call
 * lsh_assign_two_level, whose products are kernel_matmul's (the same bits
 * whatever the batch and the CPU), whose candidate cells are the P smallest
 * coarse scores |c|^2 - 2 <x, c> (ties: the lower cell) and whose list is the smallest fine
 * score among them (ties: the lower list).  So an entry is always in the list
 * its vector hashes to.  The scan still ranks every list's centre for a query
 * (lsh_rank_lists): that is a query, not a hash, and the per-list bounds come
 * from the members, wherever the assignment put them.
 *
 * Learning (hierarchical, balanced): k-means of the range's sample into C
 * coarse centres; each cell gets lists in proportion to its sample rows (so
 * lists hold about as many rows in every cell), and k-means of the cell's
 * rows learns its lists' centres.  That costs sample x (C + k / C) products
 * per iteration instead of sample x k.
 *
 * Stored: the metapage's ncoarse (0: flat, every list compared) and
 * coarse_probes (P, kept per index so that the hash of an index never changes
 * with a later default); after the list centres and mean norms, the coarse
 * centres (ncoarse x dim) and the first list of each cell (ncoarse + 1, as
 * floats, exact below 2^24).  Cells are numbered by norm range, and a cell's
 * lists are contiguous.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "kernels/distance.h"
#include "kernels/matmul.h"
#include "lsh.h"
#include "miscadmin.h"

/*
 * Coarse cells for a norm range of k lists: none (flat) below
 * LSH_TWO_LEVEL_MIN_LISTS, where comparing with every centre is cheap next to
 * the rest of the build; otherwise sqrt(P k), at most k / 4 (cells of at
 * least a few lists).
 */
int
lsh_coarse_cells(int k, int probes)
{
	if (k < LSH_TWO_LEVEL_MIN_LISTS)
		return 0;
	return (int) Max(1, Min(k / 4, floor(sqrt((double) probes * k) + 0.5)));
}

/*
 * Derive the two-level look-up tables of a learned k-means state from its
 * parameters (after the build learned them, or after lsh_get_state read
 * them): the coarse centres' squared norms, each cell's first list, each
 * range's first cell.  Allocates in the current memory context.
 */
void
lsh_two_level_init(LshState *state)
{
	const LshMetaPageData *meta = &state->meta;
	int			dim = meta->dim;
	int			nc = meta->ncoarse;
	const float *starts;

	if (nc <= 0)
		return;
	state->coarse = state->params + (Size) meta->nlists * dim + meta->nlists;
	starts = state->coarse + (Size) nc * dim;
	state->coarse_norm2 = palloc(sizeof(float) * nc);
	state->cell_start = palloc(sizeof(int) * (nc + 1));
	state->range_cells = palloc(sizeof(int) * (meta->nranges + 1));
	for (int c = 0; c < nc; c++)
		state->coarse_norm2[c] = (float) kernel_norm_squared(state->coarse + (Size) c * dim, dim);
	for (int c = 0; c <= nc; c++)
		state->cell_start[c] = (int) starts[c];
	/* range r's cells: those whose first list lies in its lists */
	for (int r = 0, c = 0; r <= meta->nranges; r++)
	{
		int			first = (int) (((int64) meta->nlists * r) / meta->nranges);

		while (c < nc && state->cell_start[c] < first)
			c++;
		state->range_cells[r] = c;
	}
}

/*
 * out[i] = the list of each of the n vectors x (n x dim, already as the
 * centres compare them: directions for inner product and cosine) within norm
 * range r.  See the file header for the definition.
 */
void
lsh_assign_two_level(const LshState *state, int r, const float *x, int n, int *out)
{
	const LshMetaPageData *meta = &state->meta;
	int			dim = meta->dim;
	int			c0 = state->range_cells[r];
	int			nc = state->range_cells[r + 1] - c0;
	int			p = Min(meta->coarse_probes, nc);
	int			maxk = 0;
	int			blk = Min(n, LSH_ASSIGN_BLOCK);
	float	   *scores;
	int		   *cand;
	int		   *cstart;
	int		   *members;
	float	   *best;
	float	   *rows;
	float	   *dots;

	Assert(nc > 0 && p > 0);
	for (int c = c0; c < c0 + nc; c++)
		maxk = Max(maxk, state->cell_start[c + 1] - state->cell_start[c]);

	/* the p nearest coarse centres of each vector */
	scores = palloc(sizeof(float) * (Size) blk * nc);
	cand = palloc(sizeof(int) * (Size) n * p);
	for (int b = 0; b < n; b += LSH_ASSIGN_BLOCK)
	{
		int			m = Min(LSH_ASSIGN_BLOCK, n - b);

		kernel_matmul(state->coarse + (Size) c0 * dim, NULL, nc, dim,
					  x + (Size) b * dim, dim, m, scores, nc, false);
		for (int i = 0; i < m; i++)
		{
			float	   *row = scores + (Size) i * nc;
			int		   *bc = cand + (Size) (b + i) * p;

			/*
			 * The p smallest scores, smallest first, ties to the lower cell:
			 * p passes of the vectorised argmin, each taken out (+inf) for
			 * the next (a NaN or +inf row can repeat a cell: harmless, the
			 * cell is then searched twice).
			 */
			bc[0] = lsh_argmin_scores(row, state->coarse_norm2 + c0, nc);
			for (int t = 1; t < p; t++)
			{
				row[bc[t - 1]] = INFINITY;
				bc[t] = lsh_argmin(row, nc);
			}
		}
	}
	pfree(scores);

	/* the vectors of each candidate cell (counting sort of the pairs) */
	cstart = palloc0(sizeof(int) * (nc + 1));
	for (int i = 0; i < n * p; i++)
		cstart[cand[i] + 1]++;
	for (int c = 0; c < nc; c++)
		cstart[c + 1] += cstart[c];
	members = palloc(sizeof(int) * (Size) n * p);
	{
		int		   *fill = palloc(sizeof(int) * nc);

		memcpy(fill, cstart, sizeof(int) * nc);
		for (int i = 0; i < n * p; i++)
			members[fill[cand[i]]++] = i / p;
		pfree(fill);
	}
	pfree(cand);

	/* the nearest list over the candidate cells: one product per cell block */
	best = palloc(sizeof(float) * n);
	for (int i = 0; i < n; i++)
	{
		best[i] = FLT_MAX;
		out[i] = -1;
	}
	/* a cell holds at most n p vectors (one vector: fct_lsh_verify, small buffers) */
	blk = Min(n * p, LSH_ASSIGN_BLOCK);
	rows = palloc(sizeof(float) * (Size) blk * dim);
	dots = palloc(sizeof(float) * (Size) blk * Max(maxk, 1));
	for (int c = 0; c < nc; c++)
	{
		int			first = state->cell_start[c0 + c];
		int			k = state->cell_start[c0 + c + 1] - first;
		const float *centers = state->params + (Size) first * dim;
		const float *norm2 = state->center_norm2 + first;

		for (int s = cstart[c]; s < cstart[c + 1]; s += LSH_ASSIGN_BLOCK)
		{
			int			m = Min(LSH_ASSIGN_BLOCK, cstart[c + 1] - s);

			for (int t = 0; t < m; t++)
				memcpy(rows + (Size) t * dim, x + (Size) members[s + t] * dim, sizeof(float) * dim);
			kernel_matmul(centers, NULL, k, dim, rows, dim, m, dots, k, false);
			for (int t = 0; t < m; t++)
			{
				int			i = members[s + t];
				int			j = lsh_argmin_scores(dots + (Size) t * k, norm2, k);
				float		sc = dots[(Size) t * k + j];

				/* NaN scores: the first list seen, in cell order */
				if (out[i] < 0 || sc < best[i] || (sc == best[i] && first + j < out[i]))
				{
					best[i] = sc;
					out[i] = first + j;
				}
			}
		}
	}
	pfree(rows);
	pfree(dots);
	pfree(best);
	pfree(members);
	pfree(cstart);
}

/* ----------------------------------------------------------------
 * Learning
 * ----------------------------------------------------------------
 */

/*
 * Reorder the n rows of x (and their norms) so that the rows of each cell
 * are contiguous, in cell order, in place (the sample may take half of
 * maintenance_work_mem: no copy of it); start[c] receives the first row of
 * cell c.
 */
static void
group_rows(float *x, float *norms, int n, int dim, const int *cell, int ncells, int *start)
{
	int		   *dest = palloc(sizeof(int) * n);
	int		   *fill = palloc(sizeof(int) * ncells);
	float	   *tmp = palloc(sizeof(float) * dim);
	float	   *tmp2 = palloc(sizeof(float) * dim);

	memset(start, 0, sizeof(int) * (ncells + 1));
	for (int i = 0; i < n; i++)
		start[cell[i] + 1]++;
	for (int c = 0; c < ncells; c++)
		start[c + 1] += start[c];
	memcpy(fill, start, sizeof(int) * ncells);
	for (int i = 0; i < n; i++)
		dest[i] = fill[cell[i]]++;

	/* follow each permutation cycle, carrying one row */
	for (int i = 0; i < n; i++)
	{
		float		nt;

		if (dest[i] == i || dest[i] < 0)
			continue;
		memcpy(tmp, x + (Size) i * dim, sizeof(float) * dim);
		nt = norms[i];
		for (int j = dest[i]; ; )
		{
			int			next = dest[j];
			float		nn = norms[j];

			memcpy(tmp2, x + (Size) j * dim, sizeof(float) * dim);
			memcpy(x + (Size) j * dim, tmp, sizeof(float) * dim);
			norms[j] = nt;
			dest[j] = -1;
			memcpy(tmp, tmp2, sizeof(float) * dim);
			nt = nn;
			if (j == i)
				break;
			j = next;
		}
	}
	pfree(dest);
	pfree(fill);
	pfree(tmp);
	pfree(tmp2);
}

/*
 * Learn the two-level partition of one norm range: the n sample rows x (as
 * the centres compare them; reordered here, with their norms) into k lists,
 * written at centers (k x dim), under at most ncells coarse centres written at
 * coarse (x dim); starts[c] receives cell c's first list relative to the
 * range (starts[ncells'] = k).  Returns the cells used (cells left without
 * sample rows are dropped).
 */
int
lsh_learn_two_level(float *x, float *norms, int n, int dim, int k, int ncells,
					float *centers, float *coarse, int *starts,
					int iterations, uint64 seed, bool spherical)
{
	int		   *cell = palloc(sizeof(int) * n);
	int		   *rowstart = palloc(sizeof(int) * (ncells + 1));
	int		   *lists = palloc0(sizeof(int) * ncells);
	double	   *frac = palloc(sizeof(double) * ncells);
	float	   *norm2 = palloc(sizeof(float) * ncells);
	float	   *work = palloc(sizeof(float) * (Size) Min(n, LSH_ASSIGN_BLOCK) * ncells);
	int			given = 0;
	int			used = 0;

	Assert(n >= k && k >= ncells && ncells >= 1);

	/* the coarse centres and every sample row's cell */
	lsh_kmeans(x, n, dim, ncells, coarse, iterations, seed, spherical);
	for (int c = 0; c < ncells; c++)
		norm2[c] = (float) kernel_norm_squared(coarse + (Size) c * dim, dim);
	lsh_assign_nearest(x, n, dim, coarse, norm2, ncells, cell, work);
	group_rows(x, norms, n, dim, cell, ncells, rowstart);

	/*
	 * Lists in proportion to the cells' rows (largest remainder), never more
	 * than a cell's rows (k-means needs a row per centre): lists of about
	 * n / k rows in every cell.
	 */
	for (int c = 0; c < ncells; c++)
	{
		double		want = (double) k * (rowstart[c + 1] - rowstart[c]) / n;

		lists[c] = (int) floor(want);
		frac[c] = want - lists[c];
		given += lists[c];
	}
	while (given < k)
	{
		int			pick = -1;

		for (int c = 0; c < ncells; c++)
			if (lists[c] < rowstart[c + 1] - rowstart[c] &&
				(pick < 0 || frac[c] > frac[pick]))
				pick = c;
		if (pick < 0)
			elog(ERROR, "lsh: %d sample rows cannot hold %d lists", n, k);
		lists[pick]++;
		frac[pick] = -1;
		given++;
	}

	/* each cell's lists, learned from its rows; cells without lists dropped */
	for (int c = 0, first = 0; c < ncells; c++)
	{
		CHECK_FOR_INTERRUPTS();
		if (lists[c] == 0)
			continue;
		lsh_kmeans(x + (Size) rowstart[c] * dim, rowstart[c + 1] - rowstart[c], dim,
				   lists[c], centers + (Size) first * dim, iterations, seed + 1 + c, spherical);
		if (used != c)
			memcpy(coarse + (Size) used * dim, coarse + (Size) c * dim, sizeof(float) * dim);
		starts[used++] = first;
		first += lists[c];
	}
	starts[used] = k;

	pfree(cell);
	pfree(rowstart);
	pfree(lists);
	pfree(frac);
	pfree(norm2);
	pfree(work);
	return used;
}
