# PGXS build of the fct extension.
#   make                  build
#   make install          install into the server that pg_config names
#   bash test/run         build, install into a private copy of PostgreSQL, run every test
MODULE_big = fct
EXTENSION = fct
EXTVERSION = 0.1.0

SRCS = $(sort $(wildcard src/*.c src/*/*.c))
OBJS = $(SRCS:.c=.o)
HEADERS = $(wildcard src/*.h src/*/*.h)

# The install script is assembled from one file per concept (sql/install/NN_name.sql, in order).
INSTALL_PARTS = $(sort $(wildcard sql/install/*.sql))
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql

# Every sql/*.sql except the install script is a pg_regress test, run in name order after
# test_setup, which creates the fixtures they share.
REGRESS = test_setup $(sort $(patsubst sql/%.sql,%,$(filter-out sql/$(EXTENSION)--% sql/test_setup.sql,$(wildcard sql/*.sql))))
REGRESS_OPTS = --load-extension=$(EXTENSION)

# OpenBLAS: the serial build, so that no BLAS worker threads start inside a backend.
OPENBLAS_DIR ?= /usr/lib/x86_64-linux-gnu/openblas-serial
OPENBLAS_INC ?= /usr/include/x86_64-linux-gnu/openblas-serial
PG_CPPFLAGS = -I$(srcdir)/src -I$(OPENBLAS_INC)
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare $(FCT_WERROR)
SHLIB_LINK = -L$(OPENBLAS_DIR) -Wl,-rpath,$(OPENBLAS_DIR) -lopenblas -lm

EXTRA_CLEAN = sql/$(EXTENSION)--$(EXTVERSION).sql

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

sql/$(EXTENSION)--$(EXTVERSION).sql: $(INSTALL_PARTS)
	cat $^ > $@

$(OBJS): $(HEADERS)

# fit.c's elementwise training loops (bias, ReLU, Adam's square roots) vectorise only with these.
src/upgrade/fit.o: CFLAGS += -fno-math-errno -fvect-cost-model=dynamic
