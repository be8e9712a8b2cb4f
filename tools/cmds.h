/*
 * cmds.h — the subcommands of the `hstore` binary.  Each takes the argv that
 * starts with its own name (argv[0] = "put", ...) and returns the process
 * exit code (see cli.h).
 */
#ifndef HSTORE_CMDS_H
#define HSTORE_CMDS_H

int cmd_node(int argc, char **argv); /* tools/cmd_node.c */
int cmd_put(int argc, char **argv);  /* tools/cmd_kv.c: put, append, get, del, ls */
int cmd_append(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_del(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_status(int argc, char **argv);     /* tools/cmd_status.c */
int cmd_limits(int argc, char **argv);     /* tools/cmd_limits.c */
int cmd_shell(int argc, char **argv);      /* tools/cmd_shell.c */
int cmd_watch(int argc, char **argv);      /* tools/cmd_watch.c */
int cmd_up(int argc, char **argv);         /* tools/cmd_up.c */
int cmd_down(int argc, char **argv);       /* tools/cmd_down.c */
int cmd_bench(int argc, char **argv);      /* tools/cmd_bench.c */
int cmd_http_token(int argc, char **argv); /* tools/cmd_http_token.c */
int cmd_backup(int argc, char **argv);     /* tools/cmd_backup.c */
int cmd_restore(int argc, char **argv);    /* tools/cmd_backup_restore.c */
int cmd_member(int argc, char **argv);     /* tools/cmd_member.c: member, transfer */
int cmd_transfer(int argc, char **argv);

#endif
