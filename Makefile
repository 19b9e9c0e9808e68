# PGXS build of the fct extension.
#   make                  build
#   make install          install into the server that pg_config names
#   bash test/run         build, install into a private copy of PostgreSQL, run every test
MODULE_big = fct
# fct_pgvector: the casts between pgvector's vector and embedding, an extension of its own that
# requires fct and vector (sql/install/95_pgvector.sql says why); it shares fct's library.  Its
# control file lives in sql/pgvector/ (the repository's top level holds fct's alone) and is copied
# beside fct.control at build time, where PGXS's install rule looks for every EXTENSION's.
EXTENSION = fct fct_pgvector
# The current version; fct.control's default_version says the same (a test checks).
EXTVERSION = 0.2.0

SRCS = $(sort $(wildcard src/*.c src/*/*.c))
OBJS = $(SRCS:.c=.o)
HEADERS = $(wildcard src/*.h src/*/*.h)

# SQL scripts (sql/README.md says how to add an object):
#   sql/install/NN_name.sql          the current version's install script, one file per concept,
#                                    assembled in name order into sql/fct--$(EXTVERSION).sql
#   sql/upgrade/A--B/NN_name.sql     the upgrade script from version A to version B, assembled likewise
#                                    into sql/fct--A--B.sql
#   sql/fct--X.sql (committed)       the install script of an earlier release, frozen as it shipped
INSTALL_PARTS = $(sort $(wildcard sql/install/*.sql))
UPGRADE_STEPS = $(notdir $(wildcard sql/upgrade/*--*))
UPGRADE_SCRIPTS = $(foreach s,$(UPGRADE_STEPS),sql/fct--$(s).sql)
DATA_built = sql/fct--$(EXTVERSION).sql $(UPGRADE_SCRIPTS)
DATA = $(filter-out $(DATA_built),$(wildcard sql/fct--*.sql)) $(wildcard sql/pgvector/fct_pgvector--*.sql)

# Every sql/*.sql except the extension's scripts is a pg_regress test, run in name order after
# test_setup, which creates the fixtures they share.
REGRESS = test_setup $(sort $(patsubst sql/%.sql,%,$(filter-out sql/fct--% sql/test_setup.sql,$(wildcard sql/*.sql))))
REGRESS_OPTS = --load-extension=fct

# OpenBLAS: the serial build, so that no BLAS worker threads start inside a backend.
OPENBLAS_DIR ?= /usr/lib/x86_64-linux-gnu/openblas-serial
OPENBLAS_INC ?= /usr/include/x86_64-linux-gnu/openblas-serial
PG_CPPFLAGS = -I$(srcdir)/src -I$(OPENBLAS_INC)
# -ffp-contract=off: never fuse a multiply and an add into one FMA.  An FMA rounds once where the
# source rounds twice, and whether the compiler fuses depends on the target (the kernels' x86-64-v3
# clones have FMA, the baseline has none, other architectures fuse by default): stored values (upgrades)
# and hashed ones (lsh lists) must have the same bits on every CPU, see src/kernels/matmul.c.  No
# -march=native and no -ffast-math for the same reason: both change the rounding.
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare -ffp-contract=off $(FCT_WERROR)
SHLIB_LINK = -L$(OPENBLAS_DIR) -Wl,-rpath,$(OPENBLAS_DIR) -lopenblas -lm

# FCT_SANITIZE=address (bash test/run --sanitize): fct built with AddressSanitizer.  The server itself
# is not instrumented: test/pg_private.sh starts it with gcc's libasan preloaded, so that fct's own
# reads and writes are checked and every malloc/free (PostgreSQL's memory context blocks included)
# goes through ASan.
ifeq ($(FCT_SANITIZE),address)
PG_CFLAGS += -fsanitize=address -fno-omit-frame-pointer
SHLIB_LINK += -fsanitize=address
endif


# the copy of sql/pgvector/fct_pgvector.control (below); set before PGXS, which tests it when read
EXTRA_CLEAN = fct_pgvector.control

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

sql/fct--$(EXTVERSION).sql: $(INSTALL_PARTS)
	cat $^ > $@

all: fct_pgvector.control
fct_pgvector.control: sql/pgvector/fct_pgvector.control
	cp $< $@

.SECONDEXPANSION:
$(UPGRADE_SCRIPTS): sql/fct--%.sql: $$(sort $$(wildcard sql/upgrade/$$*/*.sql))
	cat $^ > $@

$(OBJS): $(HEADERS)

# The kernels' plain-loop references (fct.kernel_variant = 'scalar'): one operation at a time, so
# that the tests compare the vectorised code against genuinely scalar code.
src/kernels/matmul_scalar.o src/kernels/distance_scalar.o: CFLAGS += -fno-tree-vectorize -fno-tree-slp-vectorize

# The training loops' elementwise code (bias, ReLU, Adam's square roots: nn.c; the loss and the
# folding: fit_mlp.c) vectorises only with these.
src/upgrade/nn.o src/upgrade/fit_mlp.o: CFLAGS += -fno-math-errno -fvect-cost-model=dynamic
