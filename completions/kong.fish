# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_kong_global_optspecs
    string join \n v vv h/help
end

function __fish_kong_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_kong_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_kong_using_subcommand
    set -l cmd (__fish_kong_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c kong -n "__fish_kong_needs_command" -l v -d 'Verbose output (info-level messages on the terminal)'
complete -c kong -n "__fish_kong_needs_command" -l vv -d 'Debug output'
complete -c kong -n "__fish_kong_needs_command" -s h -l help -d 'Print help'
complete -c kong -n "__fish_kong_needs_command" -f -a "start" -d 'Start a node (in the background unless nginx_daemon = off)'
complete -c kong -n "__fish_kong_needs_command" -f -a "stop" -d 'Stop a running node at once'
complete -c kong -n "__fish_kong_needs_command" -f -a "quit" -d 'Stop a running node gracefully: stop accepting, finish in-flight requests'
complete -c kong -n "__fish_kong_needs_command" -f -a "restart" -d 'Stop (if running) and start a node'
complete -c kong -n "__fish_kong_needs_command" -f -a "reload" -d 'Re-read the configuration and apply it without dropping requests'
complete -c kong -n "__fish_kong_needs_command" -f -a "health" -d 'Check that the node on a prefix is running'
complete -c kong -n "__fish_kong_needs_command" -f -a "check" -d 'Validate a configuration file'
complete -c kong -n "__fish_kong_needs_command" -f -a "prepare" -d 'Prepare the prefix directory without starting'
complete -c kong -n "__fish_kong_needs_command" -f -a "version" -d 'Print the version'
complete -c kong -n "__fish_kong_needs_command" -f -a "migrations" -d 'Manage the database schema: bootstrap, up, finish, list, status, reset'
complete -c kong -n "__fish_kong_needs_command" -f -a "config" -d 'Declarative configuration tools'
complete -c kong -n "__fish_kong_needs_command" -f -a "_serve" -d 'Run the node in this process (used by `kong start`)'
complete -c kong -n "__fish_kong_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kong -n "__fish_kong_using_subcommand start" -s c -l conf -d 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)' -r -F
complete -c kong -n "__fish_kong_using_subcommand start" -s p -l prefix -d 'Override the prefix directory' -r -F
complete -c kong -n "__fish_kong_using_subcommand start" -l db-timeout -d 'Database timeout in seconds (overrides pg_timeout)' -r
complete -c kong -n "__fish_kong_using_subcommand start" -l lock-timeout -d 'Seconds to wait for the migrations lock with --run-migrations' -r
complete -c kong -n "__fish_kong_using_subcommand start" -l nginx-conf -d 'Accepted for compatibility with Kong; there is no nginx template here' -r -F
complete -c kong -n "__fish_kong_using_subcommand start" -l nginx-conf-flags -d 'Accepted for compatibility with Kong; ignored' -r
complete -c kong -n "__fish_kong_using_subcommand start" -l run-migrations -d 'Run pending database migrations before starting'
complete -c kong -n "__fish_kong_using_subcommand start" -l v -d 'Verbose output (info-level messages on the terminal)'
complete -c kong -n "__fish_kong_using_subcommand start" -l vv -d 'Debug output'
complete -c kong -n "__fish_kong_using_subcommand start" -s h -l help -d 'Print help'
complete -c kong -n "__fish_kong_using_subcommand stop" -s p -l prefix -d 'Prefix directory of the node (default: the configured default prefix)' -r -F
complete -c kong -n "__fish_kong_using_subcommand stop" -l v -d 'Verbose output (info-level messages on the terminal)'
complete -c kong -n "__fish_kong_using_subcommand stop" -l vv -d 'Debug output'
complete -c kong -n "__fish_kong_using_subcommand stop" -s h -l help -d 'Print help'
complete -c kong -n "__fish_kong_using_subcommand quit" -s p -l prefix -d 'Prefix directory of the node (default: the configured default prefix)' -r -F
complete -c kong -n "__fish_kong_using_subcommand quit" -s t -l timeout -d 'Seconds to wait for in-flight requests before stopping forcefully (minimum 1)' -r
complete -c kong -n "__fish_kong_using_subcommand quit" -s w -l wait -d 'Seconds to wait before starting the graceful shutdown' -r
complete -c kong -n "__fish_kong_using_subcommand quit" -l v -d 'Verbose output (info-level messages on the terminal)'
complete -c kong -n "__fish_kong_using_subcommand quit" -l vv -d 'Debug output'
complete -c kong -n "__fish_kong_using_subcommand quit" -s h -l help -d 'Print help'
complete -c kong -n "__fish_kong_using_subcommand restart" -s c -l conf -d 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)' -r -F
complete -c kong -n "__fish_kong_using_subcommand restart" -s p -l prefix -d 'Override the prefix directory' -r -F
complete -c kong -n "__fish_kong_using_subcommand restart" -l db-timeout -d 'Database timeout in seconds (overrides pg_timeout)' -r
complete -c kong -n "__fish_kong_using_subcommand restart" -l lock-timeout -d 'Seconds to wait for the migrations lock with --run-migrations' -r
complete -c kong -n "__fish_kong_using_subcommand restart" -l nginx-conf -d 'Accepted for compatibility with Kong; there is no nginx template here' -r -F
complete -c kong -n "__fish_kong_using_subcommand restart" -l nginx-conf-flags -d 'Accepted for compatibility with Kong; ignored' -r
complete -c kong -n "__fish_kong_using_subcommand restart" -l run-migrations -d 'Run pending database migrations before starting'
complete -c kong -n "__fish_kong_using_subcommand restart" -l v -d 'Verbose output (info-level messages on the terminal)'
complete -c kong -n "__fish_kong_using_subcommand restart" -l vv -d 'Debug output'
complete -c kong -n "__fish_kong_using_subcommand restart" -s h -l help -d 'Print help'
complete -c kong -n "__fish_kong_using_subcommand reload" -s c -l conf -d 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)' -r -F
complete -c kong -n "__fish_kong_using_subcommand reload" -s p -l prefix -d 'Override the prefix directory' -r -F
complete -c kong -n "__fish_kong_using_subcommand reload" -l v -d 'Verbose output (info-level messages on the terminal)'
complete -c kong -n "__fish_kong_using_subcommand reload" -l vv -d 'Debug output'
complete -c kong -n "__fish_kong_using_subcommand reload" -s h -l help -d 'Print help'
complete -c kong -n "__fish_kong_using_subcommand health" -s p -l prefix -d 'Prefix directory of the node (default: the configured default prefix)' -r -F
complete -c kong -n "__fish_kong_using_subcommand health" -l v -d 'Verbose output (info-level messages on the terminal)'
complete -c kong -n "__fish_kong_using_subcommand health" -l vv -d 'Debug output'
complete -c kong -n "__fish_kong_using_subcommand health" -s h -l help -d 'Print help'
complete -c kong -n "__fish_kong_using_subcommand check" -l v -d 'Verbose output (info-level messages on the terminal)'
complete -c kong -n "__fish_kong_using_subcommand check" -l vv -d 'Debug output'
complete -c kong -n "__fish_kong_using_subcommand check" -s h -l help -d 'Print help'
complete -c kong -n "__fish_kong_using_subcommand prepare" -s c -l conf -d 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)' -r -F
complete -c kong -n "__fish_kong_using_subcommand prepare" -s p -l prefix -d 'Override the prefix directory' -r -F
complete -c kong -n "__fish_kong_using_subcommand prepare" -l v -d 'Verbose output (info-level messages on the terminal)'
complete -c kong -n "__fish_kong_using_subcommand prepare" -l vv -d 'Debug output'
complete -c kong -n "__fish_kong_using_subcommand prepare" -s h -l help -d 'Print help'
complete -c kong -n "__fish_kong_using_subcommand version" -s a -l all -d 'Also print component versions'
complete -c kong -n "__fish_kong_using_subcommand version" -l v -d 'Verbose output (info-level messages on the terminal)'
complete -c kong -n "__fish_kong_using_subcommand version" -l vv -d 'Debug output'
complete -c kong -n "__fish_kong_using_subcommand version" -s h -l help -d 'Print help'
complete -c kong -n "__fish_kong_using_subcommand migrations; and not __fish_seen_subcommand_from bootstrap up finish list status reset help" -s c -l conf -d 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)' -r -F
complete -c kong -n "__fish_kong_using_subcommand migrations; and not __fish_seen_subcommand_from bootstrap up finish list status reset help" -s p -l prefix -d 'Override the prefix directory (where the SQLite file lives)' -r -F
complete -c kong -n "__fish_kong_using_subcommand migrations; and not __fish_seen_subcommand_from bootstrap up finish list status reset help" -l db-timeout -d 'Database timeout in seconds (overrides pg_timeout)' -r
complete -c kong -n "__fish_kong_using_subcommand migrations; and not __fish_seen_subcommand_from bootstrap up finish list status reset help" -l lock-timeout -d 'Seconds to wait for another node\'s migrations lock; also how long ours lives' -r
complete -c kong -n "__fish_kong_using_subcommand migrations; and not __fish_seen_subcommand_from bootstrap up finish list status reset help" -s f -l force -d 'bootstrap: reset the database first; up: also re-run migrations that already ran'
complete -c kong -n "__fish_kong_using_subcommand migrations; and not __fish_seen_subcommand_from bootstrap up finish list status reset help" -s y -l yes -d 'reset: do not ask for confirmation'
complete -c kong -n "__fish_kong_using_subcommand migrations; and not __fish_seen_subcommand_from bootstrap up finish list status reset help" -s q -l quiet -d 'Print nothing but errors'
complete -c kong -n "__fish_kong_using_subcommand migrations; and not __fish_seen_subcommand_from bootstrap up finish list status reset help" -l v -d 'Verbose output (info-level messages on the terminal)'
complete -c kong -n "__fish_kong_using_subcommand migrations; and not __fish_seen_subcommand_from bootstrap up finish list status reset help" -l vv -d 'Debug output'
complete -c kong -n "__fish_kong_using_subcommand migrations; and not __fish_seen_subcommand_from bootstrap up finish list status reset help" -s h -l help -d 'Print help'
complete -c kong -n "__fish_kong_using_subcommand migrations; and not __fish_seen_subcommand_from bootstrap up finish list status reset help" -f -a "bootstrap" -d 'Create the schema on an empty database and run every migration'
complete -c kong -n "__fish_kong_using_subcommand migrations; and not __fish_seen_subcommand_from bootstrap up finish list status reset help" -f -a "up" -d 'Run the new migrations of a newer kong; those with a teardown stay pending'
complete -c kong -n "__fish_kong_using_subcommand migrations; and not __fish_seen_subcommand_from bootstrap up finish list status reset help" -f -a "finish" -d 'Run the teardown of pending migrations, once every node runs the new version'
complete -c kong -n "__fish_kong_using_subcommand migrations; and not __fish_seen_subcommand_from bootstrap up finish list status reset help" -f -a "list" -d 'List executed, pending and new migrations (exit 0 up to date, 3 needs bootstrap, 4 pending, 5 new)'
complete -c kong -n "__fish_kong_using_subcommand migrations; and not __fish_seen_subcommand_from bootstrap up finish list status reset help" -f -a "status" -d 'Print the migration state as JSON'
complete -c kong -n "__fish_kong_using_subcommand migrations; and not __fish_seen_subcommand_from bootstrap up finish list status reset help" -f -a "reset" -d 'Drop every table of the database: all configuration is lost'
complete -c kong -n "__fish_kong_using_subcommand migrations; and not __fish_seen_subcommand_from bootstrap up finish list status reset help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from bootstrap" -s c -l conf -d 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)' -r -F
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from bootstrap" -s p -l prefix -d 'Override the prefix directory (where the SQLite file lives)' -r -F
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from bootstrap" -l db-timeout -d 'Database timeout in seconds (overrides pg_timeout)' -r
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from bootstrap" -l lock-timeout -d 'Seconds to wait for another node\'s migrations lock; also how long ours lives' -r
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from bootstrap" -s f -l force -d 'bootstrap: reset the database first; up: also re-run migrations that already ran'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from bootstrap" -s y -l yes -d 'reset: do not ask for confirmation'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from bootstrap" -s q -l quiet -d 'Print nothing but errors'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from bootstrap" -l v -d 'Verbose output (info-level messages on the terminal)'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from bootstrap" -l vv -d 'Debug output'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from bootstrap" -s h -l help -d 'Print help'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from up" -s c -l conf -d 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)' -r -F
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from up" -s p -l prefix -d 'Override the prefix directory (where the SQLite file lives)' -r -F
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from up" -l db-timeout -d 'Database timeout in seconds (overrides pg_timeout)' -r
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from up" -l lock-timeout -d 'Seconds to wait for another node\'s migrations lock; also how long ours lives' -r
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from up" -s f -l force -d 'bootstrap: reset the database first; up: also re-run migrations that already ran'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from up" -s y -l yes -d 'reset: do not ask for confirmation'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from up" -s q -l quiet -d 'Print nothing but errors'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from up" -l v -d 'Verbose output (info-level messages on the terminal)'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from up" -l vv -d 'Debug output'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from up" -s h -l help -d 'Print help'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from finish" -s c -l conf -d 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)' -r -F
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from finish" -s p -l prefix -d 'Override the prefix directory (where the SQLite file lives)' -r -F
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from finish" -l db-timeout -d 'Database timeout in seconds (overrides pg_timeout)' -r
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from finish" -l lock-timeout -d 'Seconds to wait for another node\'s migrations lock; also how long ours lives' -r
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from finish" -s f -l force -d 'bootstrap: reset the database first; up: also re-run migrations that already ran'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from finish" -s y -l yes -d 'reset: do not ask for confirmation'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from finish" -s q -l quiet -d 'Print nothing but errors'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from finish" -l v -d 'Verbose output (info-level messages on the terminal)'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from finish" -l vv -d 'Debug output'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from finish" -s h -l help -d 'Print help'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from list" -s c -l conf -d 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)' -r -F
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from list" -s p -l prefix -d 'Override the prefix directory (where the SQLite file lives)' -r -F
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from list" -l db-timeout -d 'Database timeout in seconds (overrides pg_timeout)' -r
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from list" -l lock-timeout -d 'Seconds to wait for another node\'s migrations lock; also how long ours lives' -r
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from list" -s f -l force -d 'bootstrap: reset the database first; up: also re-run migrations that already ran'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from list" -s y -l yes -d 'reset: do not ask for confirmation'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print nothing but errors'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from list" -l v -d 'Verbose output (info-level messages on the terminal)'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from list" -l vv -d 'Debug output'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from status" -s c -l conf -d 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)' -r -F
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from status" -s p -l prefix -d 'Override the prefix directory (where the SQLite file lives)' -r -F
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from status" -l db-timeout -d 'Database timeout in seconds (overrides pg_timeout)' -r
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from status" -l lock-timeout -d 'Seconds to wait for another node\'s migrations lock; also how long ours lives' -r
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from status" -s f -l force -d 'bootstrap: reset the database first; up: also re-run migrations that already ran'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from status" -s y -l yes -d 'reset: do not ask for confirmation'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from status" -s q -l quiet -d 'Print nothing but errors'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from status" -l v -d 'Verbose output (info-level messages on the terminal)'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from status" -l vv -d 'Debug output'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from reset" -s c -l conf -d 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)' -r -F
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from reset" -s p -l prefix -d 'Override the prefix directory (where the SQLite file lives)' -r -F
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from reset" -l db-timeout -d 'Database timeout in seconds (overrides pg_timeout)' -r
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from reset" -l lock-timeout -d 'Seconds to wait for another node\'s migrations lock; also how long ours lives' -r
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from reset" -s f -l force -d 'bootstrap: reset the database first; up: also re-run migrations that already ran'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from reset" -s y -l yes -d 'reset: do not ask for confirmation'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from reset" -s q -l quiet -d 'Print nothing but errors'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from reset" -l v -d 'Verbose output (info-level messages on the terminal)'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from reset" -l vv -d 'Debug output'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from reset" -s h -l help -d 'Print help'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from help" -f -a "bootstrap" -d 'Create the schema on an empty database and run every migration'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from help" -f -a "up" -d 'Run the new migrations of a newer kong; those with a teardown stay pending'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from help" -f -a "finish" -d 'Run the teardown of pending migrations, once every node runs the new version'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from help" -f -a "list" -d 'List executed, pending and new migrations (exit 0 up to date, 3 needs bootstrap, 4 pending, 5 new)'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from help" -f -a "status" -d 'Print the migration state as JSON'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from help" -f -a "reset" -d 'Drop every table of the database: all configuration is lost'
complete -c kong -n "__fish_kong_using_subcommand migrations; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kong -n "__fish_kong_using_subcommand config; and not __fish_seen_subcommand_from init parse db_import db_export help" -l v -d 'Verbose output (info-level messages on the terminal)'
complete -c kong -n "__fish_kong_using_subcommand config; and not __fish_seen_subcommand_from init parse db_import db_export help" -l vv -d 'Debug output'
complete -c kong -n "__fish_kong_using_subcommand config; and not __fish_seen_subcommand_from init parse db_import db_export help" -s h -l help -d 'Print help'
complete -c kong -n "__fish_kong_using_subcommand config; and not __fish_seen_subcommand_from init parse db_import db_export help" -f -a "init" -d 'Write an example declarative configuration file (default ./kong.yml)'
complete -c kong -n "__fish_kong_using_subcommand config; and not __fish_seen_subcommand_from init parse db_import db_export help" -f -a "parse" -d 'Check a declarative configuration file (YAML or JSON) without loading it anywhere'
complete -c kong -n "__fish_kong_using_subcommand config; and not __fish_seen_subcommand_from init parse db_import db_export help" -f -a "db_import" -d 'Import a declarative configuration file into the database, all or nothing'
complete -c kong -n "__fish_kong_using_subcommand config; and not __fish_seen_subcommand_from init parse db_import db_export help" -f -a "db_export" -d 'Export the database as a declarative configuration file (YAML)'
complete -c kong -n "__fish_kong_using_subcommand config; and not __fish_seen_subcommand_from init parse db_import db_export help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kong -n "__fish_kong_using_subcommand config; and __fish_seen_subcommand_from init" -l v -d 'Verbose output (info-level messages on the terminal)'
complete -c kong -n "__fish_kong_using_subcommand config; and __fish_seen_subcommand_from init" -l vv -d 'Debug output'
complete -c kong -n "__fish_kong_using_subcommand config; and __fish_seen_subcommand_from init" -s h -l help -d 'Print help'
complete -c kong -n "__fish_kong_using_subcommand config; and __fish_seen_subcommand_from parse" -s c -l conf -d 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)' -r -F
complete -c kong -n "__fish_kong_using_subcommand config; and __fish_seen_subcommand_from parse" -s p -l prefix -d 'Override the prefix directory' -r -F
complete -c kong -n "__fish_kong_using_subcommand config; and __fish_seen_subcommand_from parse" -l v -d 'Verbose output (info-level messages on the terminal)'
complete -c kong -n "__fish_kong_using_subcommand config; and __fish_seen_subcommand_from parse" -l vv -d 'Debug output'
complete -c kong -n "__fish_kong_using_subcommand config; and __fish_seen_subcommand_from parse" -s h -l help -d 'Print help'
complete -c kong -n "__fish_kong_using_subcommand config; and __fish_seen_subcommand_from db_import" -s c -l conf -d 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)' -r -F
complete -c kong -n "__fish_kong_using_subcommand config; and __fish_seen_subcommand_from db_import" -s p -l prefix -d 'Override the prefix directory' -r -F
complete -c kong -n "__fish_kong_using_subcommand config; and __fish_seen_subcommand_from db_import" -l v -d 'Verbose output (info-level messages on the terminal)'
complete -c kong -n "__fish_kong_using_subcommand config; and __fish_seen_subcommand_from db_import" -l vv -d 'Debug output'
complete -c kong -n "__fish_kong_using_subcommand config; and __fish_seen_subcommand_from db_import" -s h -l help -d 'Print help'
complete -c kong -n "__fish_kong_using_subcommand config; and __fish_seen_subcommand_from db_export" -s c -l conf -d 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)' -r -F
complete -c kong -n "__fish_kong_using_subcommand config; and __fish_seen_subcommand_from db_export" -s p -l prefix -d 'Override the prefix directory' -r -F
complete -c kong -n "__fish_kong_using_subcommand config; and __fish_seen_subcommand_from db_export" -l v -d 'Verbose output (info-level messages on the terminal)'
complete -c kong -n "__fish_kong_using_subcommand config; and __fish_seen_subcommand_from db_export" -l vv -d 'Debug output'
complete -c kong -n "__fish_kong_using_subcommand config; and __fish_seen_subcommand_from db_export" -s h -l help -d 'Print help'
complete -c kong -n "__fish_kong_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "init" -d 'Write an example declarative configuration file (default ./kong.yml)'
complete -c kong -n "__fish_kong_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "parse" -d 'Check a declarative configuration file (YAML or JSON) without loading it anywhere'
complete -c kong -n "__fish_kong_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "db_import" -d 'Import a declarative configuration file into the database, all or nothing'
complete -c kong -n "__fish_kong_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "db_export" -d 'Export the database as a declarative configuration file (YAML)'
complete -c kong -n "__fish_kong_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kong -n "__fish_kong_using_subcommand _serve" -s p -l prefix -d 'Prefix holding `.kong_env`' -r -F
complete -c kong -n "__fish_kong_using_subcommand _serve" -l daemon -d 'Report readiness on standard error, then detach from the terminal'
complete -c kong -n "__fish_kong_using_subcommand _serve" -l v -d 'Verbose output (info-level messages on the terminal)'
complete -c kong -n "__fish_kong_using_subcommand _serve" -l vv -d 'Debug output'
complete -c kong -n "__fish_kong_using_subcommand _serve" -s h -l help -d 'Print help'
complete -c kong -n "__fish_kong_using_subcommand help; and not __fish_seen_subcommand_from start stop quit restart reload health check prepare version migrations config _serve help" -f -a "start" -d 'Start a node (in the background unless nginx_daemon = off)'
complete -c kong -n "__fish_kong_using_subcommand help; and not __fish_seen_subcommand_from start stop quit restart reload health check prepare version migrations config _serve help" -f -a "stop" -d 'Stop a running node at once'
complete -c kong -n "__fish_kong_using_subcommand help; and not __fish_seen_subcommand_from start stop quit restart reload health check prepare version migrations config _serve help" -f -a "quit" -d 'Stop a running node gracefully: stop accepting, finish in-flight requests'
complete -c kong -n "__fish_kong_using_subcommand help; and not __fish_seen_subcommand_from start stop quit restart reload health check prepare version migrations config _serve help" -f -a "restart" -d 'Stop (if running) and start a node'
complete -c kong -n "__fish_kong_using_subcommand help; and not __fish_seen_subcommand_from start stop quit restart reload health check prepare version migrations config _serve help" -f -a "reload" -d 'Re-read the configuration and apply it without dropping requests'
complete -c kong -n "__fish_kong_using_subcommand help; and not __fish_seen_subcommand_from start stop quit restart reload health check prepare version migrations config _serve help" -f -a "health" -d 'Check that the node on a prefix is running'
complete -c kong -n "__fish_kong_using_subcommand help; and not __fish_seen_subcommand_from start stop quit restart reload health check prepare version migrations config _serve help" -f -a "check" -d 'Validate a configuration file'
complete -c kong -n "__fish_kong_using_subcommand help; and not __fish_seen_subcommand_from start stop quit restart reload health check prepare version migrations config _serve help" -f -a "prepare" -d 'Prepare the prefix directory without starting'
complete -c kong -n "__fish_kong_using_subcommand help; and not __fish_seen_subcommand_from start stop quit restart reload health check prepare version migrations config _serve help" -f -a "version" -d 'Print the version'
complete -c kong -n "__fish_kong_using_subcommand help; and not __fish_seen_subcommand_from start stop quit restart reload health check prepare version migrations config _serve help" -f -a "migrations" -d 'Manage the database schema: bootstrap, up, finish, list, status, reset'
complete -c kong -n "__fish_kong_using_subcommand help; and not __fish_seen_subcommand_from start stop quit restart reload health check prepare version migrations config _serve help" -f -a "config" -d 'Declarative configuration tools'
complete -c kong -n "__fish_kong_using_subcommand help; and not __fish_seen_subcommand_from start stop quit restart reload health check prepare version migrations config _serve help" -f -a "_serve" -d 'Run the node in this process (used by `kong start`)'
complete -c kong -n "__fish_kong_using_subcommand help; and not __fish_seen_subcommand_from start stop quit restart reload health check prepare version migrations config _serve help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kong -n "__fish_kong_using_subcommand help; and __fish_seen_subcommand_from migrations" -f -a "bootstrap" -d 'Create the schema on an empty database and run every migration'
complete -c kong -n "__fish_kong_using_subcommand help; and __fish_seen_subcommand_from migrations" -f -a "up" -d 'Run the new migrations of a newer kong; those with a teardown stay pending'
complete -c kong -n "__fish_kong_using_subcommand help; and __fish_seen_subcommand_from migrations" -f -a "finish" -d 'Run the teardown of pending migrations, once every node runs the new version'
complete -c kong -n "__fish_kong_using_subcommand help; and __fish_seen_subcommand_from migrations" -f -a "list" -d 'List executed, pending and new migrations (exit 0 up to date, 3 needs bootstrap, 4 pending, 5 new)'
complete -c kong -n "__fish_kong_using_subcommand help; and __fish_seen_subcommand_from migrations" -f -a "status" -d 'Print the migration state as JSON'
complete -c kong -n "__fish_kong_using_subcommand help; and __fish_seen_subcommand_from migrations" -f -a "reset" -d 'Drop every table of the database: all configuration is lost'
complete -c kong -n "__fish_kong_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "init" -d 'Write an example declarative configuration file (default ./kong.yml)'
complete -c kong -n "__fish_kong_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "parse" -d 'Check a declarative configuration file (YAML or JSON) without loading it anywhere'
complete -c kong -n "__fish_kong_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "db_import" -d 'Import a declarative configuration file into the database, all or nothing'
complete -c kong -n "__fish_kong_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "db_export" -d 'Export the database as a declarative configuration file (YAML)'
