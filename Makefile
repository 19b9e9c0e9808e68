# PGXS build of the fct extension.
#   make                  build
#   make install          install into the server that pg_config names
#   bash test/run         build, install into a private copy of PostgreSQL, run every test
MODULE_big = fct
EXTENSION = fct
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
UPGRADE_SCRIPTS = $(foreach s,$(UPGRADE_STEPS),sql/$(EXTENSION)--$(s).sql)
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql $(UPGRADE_SCRIPTS)
DATA = $(filter-out $(DATA_built),$(wildcard sql/$(EXTENSION)--*.sql))

# Every sql/*.sql except the extension's scripts is a pg_regress test, run in name order after
# test_setup, which creates the fixtures they share.
REGRESS = test_setup $(sort $(patsubst sql/%.sql,%,$(filter-out sql/$(EXTENSION)--% sql/test_setup.sql,$(wildcard sql/*.sql))))
REGRESS_OPTS = --load-extension=$(EXTENSION)

# OpenBLAS: the serial build, so that no BLAS worker threads start inside a backend.
OPENBLAS_DIR ?= /usr/lib/x86_64-linux-gnu/openblas-serial
OPENBLAS_INC ?= /usr/include/x86_64-linux-gnu/openblas-serial
PG_CPPFLAGS = -I$(srcdir)/src -I$(OPENBLAS_INC)
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare $(FCT_WERROR)
SHLIB_LINK = -L$(OPENBLAS_DIR) -Wl,-rpath,$(OPENBLAS_DIR) -lopenblas -lm


PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

sql/$(EXTENSION)--$(EXTVERSION).sql: $(INSTALL_PARTS)
	cat $^ > $@

.SECONDEXPANSION:
$(UPGRADE_SCRIPTS): sql/$(EXTENSION)--%.sql: $$(sort $$(wildcard sql/upgrade/$$*/*.sql))
	cat $^ > $@

$(OBJS): $(HEADERS)

# fit.c's elementwise training loops (bias, ReLU, Adam's square roots) vectorise only with these.
src/upgrade/fit.o: CFLAGS += -fno-math-errno -fvect-cost-model=dynamic
