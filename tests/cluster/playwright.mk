# playwright.mk — the headless browser driver of the playground's browser test
# (tests/cluster/test_play_browser.sh).
#
#   make playwright   installs playwright-core from npm into build/playwright
#                     (npm from Debian when missing).  It drives Debian's
#                     chromium (DEB_PKGS, /usr/bin/chromium): no browser is
#                     ever downloaded (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1).
# test-cluster installs it first, so `make test` on a fresh machine has it.

PLAYWRIGHT_VERSION := 1.65.2
PLAYWRIGHT_DIR     := build/playwright
PLAYWRIGHT_STAMP   := $(PLAYWRIGHT_DIR)/installed-$(PLAYWRIGHT_VERSION)

.PHONY: playwright
playwright: $(PLAYWRIGHT_STAMP)
test-cluster: $(PLAYWRIGHT_STAMP)

$(PLAYWRIGHT_STAMP):
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "playwright: installing npm from Debian"; sudo=""; \
	  [ "$$(id -u)" != 0 ] && sudo=sudo; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null || exit 1; \
	fi
	@mkdir -p $(PLAYWRIGHT_DIR)
	@echo "playwright: npm install playwright-core@$(PLAYWRIGHT_VERSION) into $(PLAYWRIGHT_DIR)"
	@cd $(PLAYWRIGHT_DIR) && [ -f package.json ] || echo '{"private": true}' > package.json
	@cd $(PLAYWRIGHT_DIR) && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund \
	  --loglevel=error playwright-core@$(PLAYWRIGHT_VERSION)
	@touch $@
