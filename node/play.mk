# play.mk — the playground page (node/play/*) compiled into the node.
#
# node/play/embed.sh turns the page's files into one C source of byte arrays
# (build/gen/play_assets.c, the table of node/play_assets.h) with od and sed;
# its object joins libhstore.a beside node/*.c.  Editing a file of the page
# rebuilds the table and relinks bin/hstore.

PLAY_FILES := node/play/index.html node/play/play.css node/play/play.js

build/gen/play_assets.c: $(PLAY_FILES) node/play/embed.sh node/play.mk
	@mkdir -p build/gen
	node/play/embed.sh /=node/play/index.html /play/play.css=node/play/play.css \
	  /play/play.js=node/play/play.js > $@.tmp && mv $@.tmp $@

build/libhstore.a: build/obj/build/gen/play_assets.o
build/asan/libhstore.a: build/asan/obj/build/gen/play_assets.o
