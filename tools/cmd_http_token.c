/*
 * cmd_http_token.c — `hstore http-token`: prints the bearer token of the
 * nodes' HTTP port, derived from the cluster secret (net/auth.h), so that
 * scripts can say curl -H "Authorization: Bearer $(hstore http-token)".
 */
#include <stdio.h>

#include "net/auth.h"
#include "tools/cli.h"
#include "tools/cmds.h"

static const char token_help[] =
    "Usage: hstore http-token [--secret-file F] [--dir DIR]\n"
    "\n"
    "Prints the bearer token every node's HTTP port asks for (Authorization:\n"
    "Bearer TOKEN), derived from the cluster secret: --secret-file F, else\n"
    "$HSTORE_SECRET_FILE, else DIR/secret of the cluster `hstore up` started.\n"
    "Exits 4 when no secret is found (a node started with --insecure asks for no\n"
    "token).\n"
    "\n"
    "Example:\n"
    "  curl -H \"Authorization: Bearer $(hstore http-token)\" http://127.0.0.1:8100/v1/status\n"
    "\n";

int cmd_http_token(int argc, char **argv)
{
    cli_client_opts o;
    int code;
    int first = cli_parse_client_args(argc, argv, "http-token", token_help, &o, NULL, &code);
    if (first < 0)
        return code;
    if (first < argc) {
        cli_err("http-token: unexpected argument '%s' (see hstore http-token --help)", argv[first]);
        return CLI_EXIT_USAGE;
    }
    if (cli_load_secret(&o) != 0)
        return CLI_EXIT_AUTH;
    net_auth a;
    net_auth_get_default(&a);
    if (!a.secure) {
        cli_err("http-token: no cluster secret found (--secret-file F, HSTORE_SECRET_FILE, or "
                "DIR/secret from `hstore up`)");
        return CLI_EXIT_AUTH;
    }
    char tok[NET_HTTP_TOKEN_LEN + 1];
    net_auth_http_token(&a, tok);
    printf("%s\n", tok);
    return CLI_EXIT_OK;
}
