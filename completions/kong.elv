
use builtin;
use str;

set edit:completion:arg-completer[kong] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'kong'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'kong'= {
            cand --v 'Verbose output (info-level messages on the terminal)'
            cand --vv 'Debug output'
            cand -h 'Print help'
            cand --help 'Print help'
            cand start 'Start a node (in the background unless nginx_daemon = off)'
            cand stop 'Stop a running node at once'
            cand quit 'Stop a running node gracefully: stop accepting, finish in-flight requests'
            cand restart 'Stop (if running) and start a node'
            cand reload 'Re-read the configuration and apply it without dropping requests'
            cand health 'Check that the node on a prefix is running'
            cand check 'Validate a configuration file'
            cand prepare 'Prepare the prefix directory without starting'
            cand version 'Print the version'
            cand migrations 'Manage the database schema: bootstrap, up, finish, list, status, reset'
            cand config 'Declarative configuration tools'
            cand _serve 'Run the node in this process (used by `kong start`)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'kong;start'= {
            cand -c 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand --conf 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand -p 'Override the prefix directory'
            cand --prefix 'Override the prefix directory'
            cand --db-timeout 'Database timeout in seconds (overrides pg_timeout)'
            cand --lock-timeout 'Seconds to wait for the migrations lock with --run-migrations'
            cand --nginx-conf 'Accepted for compatibility with Kong; there is no nginx template here'
            cand --nginx-conf-flags 'Accepted for compatibility with Kong; ignored'
            cand --run-migrations 'Run pending database migrations before starting'
            cand --v 'Verbose output (info-level messages on the terminal)'
            cand --vv 'Debug output'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kong;stop'= {
            cand -p 'Prefix directory of the node (default: the configured default prefix)'
            cand --prefix 'Prefix directory of the node (default: the configured default prefix)'
            cand --v 'Verbose output (info-level messages on the terminal)'
            cand --vv 'Debug output'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kong;quit'= {
            cand -p 'Prefix directory of the node (default: the configured default prefix)'
            cand --prefix 'Prefix directory of the node (default: the configured default prefix)'
            cand -t 'Seconds to wait for in-flight requests before stopping forcefully (minimum 1)'
            cand --timeout 'Seconds to wait for in-flight requests before stopping forcefully (minimum 1)'
            cand -w 'Seconds to wait before starting the graceful shutdown'
            cand --wait 'Seconds to wait before starting the graceful shutdown'
            cand --v 'Verbose output (info-level messages on the terminal)'
            cand --vv 'Debug output'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kong;restart'= {
            cand -c 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand --conf 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand -p 'Override the prefix directory'
            cand --prefix 'Override the prefix directory'
            cand --db-timeout 'Database timeout in seconds (overrides pg_timeout)'
            cand --lock-timeout 'Seconds to wait for the migrations lock with --run-migrations'
            cand --nginx-conf 'Accepted for compatibility with Kong; there is no nginx template here'
            cand --nginx-conf-flags 'Accepted for compatibility with Kong; ignored'
            cand --run-migrations 'Run pending database migrations before starting'
            cand --v 'Verbose output (info-level messages on the terminal)'
            cand --vv 'Debug output'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kong;reload'= {
            cand -c 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand --conf 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand -p 'Override the prefix directory'
            cand --prefix 'Override the prefix directory'
            cand --v 'Verbose output (info-level messages on the terminal)'
            cand --vv 'Debug output'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kong;health'= {
            cand -p 'Prefix directory of the node (default: the configured default prefix)'
            cand --prefix 'Prefix directory of the node (default: the configured default prefix)'
            cand --v 'Verbose output (info-level messages on the terminal)'
            cand --vv 'Debug output'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kong;check'= {
            cand --v 'Verbose output (info-level messages on the terminal)'
            cand --vv 'Debug output'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kong;prepare'= {
            cand -c 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand --conf 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand -p 'Override the prefix directory'
            cand --prefix 'Override the prefix directory'
            cand --v 'Verbose output (info-level messages on the terminal)'
            cand --vv 'Debug output'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kong;version'= {
            cand -a 'Also print component versions'
            cand --all 'Also print component versions'
            cand --v 'Verbose output (info-level messages on the terminal)'
            cand --vv 'Debug output'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kong;migrations'= {
            cand -c 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand --conf 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand -p 'Override the prefix directory (where the SQLite file lives)'
            cand --prefix 'Override the prefix directory (where the SQLite file lives)'
            cand --db-timeout 'Database timeout in seconds (overrides pg_timeout)'
            cand --lock-timeout 'Seconds to wait for another node''s migrations lock; also how long ours lives'
            cand -f 'bootstrap: reset the database first; up: also re-run migrations that already ran'
            cand --force 'bootstrap: reset the database first; up: also re-run migrations that already ran'
            cand -y 'reset: do not ask for confirmation'
            cand --yes 'reset: do not ask for confirmation'
            cand -q 'Print nothing but errors'
            cand --quiet 'Print nothing but errors'
            cand --v 'Verbose output (info-level messages on the terminal)'
            cand --vv 'Debug output'
            cand -h 'Print help'
            cand --help 'Print help'
            cand bootstrap 'Create the schema on an empty database and run every migration'
            cand up 'Run the new migrations of a newer kong; those with a teardown stay pending'
            cand finish 'Run the teardown of pending migrations, once every node runs the new version'
            cand list 'List executed, pending and new migrations (exit 0 up to date, 3 needs bootstrap, 4 pending, 5 new)'
            cand status 'Print the migration state as JSON'
            cand reset 'Drop every table of the database: all configuration is lost'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'kong;migrations;bootstrap'= {
            cand -c 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand --conf 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand -p 'Override the prefix directory (where the SQLite file lives)'
            cand --prefix 'Override the prefix directory (where the SQLite file lives)'
            cand --db-timeout 'Database timeout in seconds (overrides pg_timeout)'
            cand --lock-timeout 'Seconds to wait for another node''s migrations lock; also how long ours lives'
            cand -f 'bootstrap: reset the database first; up: also re-run migrations that already ran'
            cand --force 'bootstrap: reset the database first; up: also re-run migrations that already ran'
            cand -y 'reset: do not ask for confirmation'
            cand --yes 'reset: do not ask for confirmation'
            cand -q 'Print nothing but errors'
            cand --quiet 'Print nothing but errors'
            cand --v 'Verbose output (info-level messages on the terminal)'
            cand --vv 'Debug output'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kong;migrations;up'= {
            cand -c 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand --conf 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand -p 'Override the prefix directory (where the SQLite file lives)'
            cand --prefix 'Override the prefix directory (where the SQLite file lives)'
            cand --db-timeout 'Database timeout in seconds (overrides pg_timeout)'
            cand --lock-timeout 'Seconds to wait for another node''s migrations lock; also how long ours lives'
            cand -f 'bootstrap: reset the database first; up: also re-run migrations that already ran'
            cand --force 'bootstrap: reset the database first; up: also re-run migrations that already ran'
            cand -y 'reset: do not ask for confirmation'
            cand --yes 'reset: do not ask for confirmation'
            cand -q 'Print nothing but errors'
            cand --quiet 'Print nothing but errors'
            cand --v 'Verbose output (info-level messages on the terminal)'
            cand --vv 'Debug output'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kong;migrations;finish'= {
            cand -c 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand --conf 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand -p 'Override the prefix directory (where the SQLite file lives)'
            cand --prefix 'Override the prefix directory (where the SQLite file lives)'
            cand --db-timeout 'Database timeout in seconds (overrides pg_timeout)'
            cand --lock-timeout 'Seconds to wait for another node''s migrations lock; also how long ours lives'
            cand -f 'bootstrap: reset the database first; up: also re-run migrations that already ran'
            cand --force 'bootstrap: reset the database first; up: also re-run migrations that already ran'
            cand -y 'reset: do not ask for confirmation'
            cand --yes 'reset: do not ask for confirmation'
            cand -q 'Print nothing but errors'
            cand --quiet 'Print nothing but errors'
            cand --v 'Verbose output (info-level messages on the terminal)'
            cand --vv 'Debug output'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kong;migrations;list'= {
            cand -c 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand --conf 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand -p 'Override the prefix directory (where the SQLite file lives)'
            cand --prefix 'Override the prefix directory (where the SQLite file lives)'
            cand --db-timeout 'Database timeout in seconds (overrides pg_timeout)'
            cand --lock-timeout 'Seconds to wait for another node''s migrations lock; also how long ours lives'
            cand -f 'bootstrap: reset the database first; up: also re-run migrations that already ran'
            cand --force 'bootstrap: reset the database first; up: also re-run migrations that already ran'
            cand -y 'reset: do not ask for confirmation'
            cand --yes 'reset: do not ask for confirmation'
            cand -q 'Print nothing but errors'
            cand --quiet 'Print nothing but errors'
            cand --v 'Verbose output (info-level messages on the terminal)'
            cand --vv 'Debug output'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kong;migrations;status'= {
            cand -c 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand --conf 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand -p 'Override the prefix directory (where the SQLite file lives)'
            cand --prefix 'Override the prefix directory (where the SQLite file lives)'
            cand --db-timeout 'Database timeout in seconds (overrides pg_timeout)'
            cand --lock-timeout 'Seconds to wait for another node''s migrations lock; also how long ours lives'
            cand -f 'bootstrap: reset the database first; up: also re-run migrations that already ran'
            cand --force 'bootstrap: reset the database first; up: also re-run migrations that already ran'
            cand -y 'reset: do not ask for confirmation'
            cand --yes 'reset: do not ask for confirmation'
            cand -q 'Print nothing but errors'
            cand --quiet 'Print nothing but errors'
            cand --v 'Verbose output (info-level messages on the terminal)'
            cand --vv 'Debug output'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kong;migrations;reset'= {
            cand -c 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand --conf 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand -p 'Override the prefix directory (where the SQLite file lives)'
            cand --prefix 'Override the prefix directory (where the SQLite file lives)'
            cand --db-timeout 'Database timeout in seconds (overrides pg_timeout)'
            cand --lock-timeout 'Seconds to wait for another node''s migrations lock; also how long ours lives'
            cand -f 'bootstrap: reset the database first; up: also re-run migrations that already ran'
            cand --force 'bootstrap: reset the database first; up: also re-run migrations that already ran'
            cand -y 'reset: do not ask for confirmation'
            cand --yes 'reset: do not ask for confirmation'
            cand -q 'Print nothing but errors'
            cand --quiet 'Print nothing but errors'
            cand --v 'Verbose output (info-level messages on the terminal)'
            cand --vv 'Debug output'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kong;migrations;help'= {
            cand bootstrap 'Create the schema on an empty database and run every migration'
            cand up 'Run the new migrations of a newer kong; those with a teardown stay pending'
            cand finish 'Run the teardown of pending migrations, once every node runs the new version'
            cand list 'List executed, pending and new migrations (exit 0 up to date, 3 needs bootstrap, 4 pending, 5 new)'
            cand status 'Print the migration state as JSON'
            cand reset 'Drop every table of the database: all configuration is lost'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'kong;migrations;help;bootstrap'= {
        }
        &'kong;migrations;help;up'= {
        }
        &'kong;migrations;help;finish'= {
        }
        &'kong;migrations;help;list'= {
        }
        &'kong;migrations;help;status'= {
        }
        &'kong;migrations;help;reset'= {
        }
        &'kong;migrations;help;help'= {
        }
        &'kong;config'= {
            cand --v 'Verbose output (info-level messages on the terminal)'
            cand --vv 'Debug output'
            cand -h 'Print help'
            cand --help 'Print help'
            cand init 'Write an example declarative configuration file (default ./kong.yml)'
            cand parse 'Check a declarative configuration file (YAML or JSON) without loading it anywhere'
            cand db_import 'Import a declarative configuration file into the database, all or nothing'
            cand db_export 'Export the database as a declarative configuration file (YAML)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'kong;config;init'= {
            cand --v 'Verbose output (info-level messages on the terminal)'
            cand --vv 'Debug output'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kong;config;parse'= {
            cand -c 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand --conf 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand -p 'Override the prefix directory'
            cand --prefix 'Override the prefix directory'
            cand --v 'Verbose output (info-level messages on the terminal)'
            cand --vv 'Debug output'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kong;config;db_import'= {
            cand -c 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand --conf 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand -p 'Override the prefix directory'
            cand --prefix 'Override the prefix directory'
            cand --v 'Verbose output (info-level messages on the terminal)'
            cand --vv 'Debug output'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kong;config;db_export'= {
            cand -c 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand --conf 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)'
            cand -p 'Override the prefix directory'
            cand --prefix 'Override the prefix directory'
            cand --v 'Verbose output (info-level messages on the terminal)'
            cand --vv 'Debug output'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kong;config;help'= {
            cand init 'Write an example declarative configuration file (default ./kong.yml)'
            cand parse 'Check a declarative configuration file (YAML or JSON) without loading it anywhere'
            cand db_import 'Import a declarative configuration file into the database, all or nothing'
            cand db_export 'Export the database as a declarative configuration file (YAML)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'kong;config;help;init'= {
        }
        &'kong;config;help;parse'= {
        }
        &'kong;config;help;db_import'= {
        }
        &'kong;config;help;db_export'= {
        }
        &'kong;config;help;help'= {
        }
        &'kong;_serve'= {
            cand -p 'Prefix holding `.kong_env`'
            cand --prefix 'Prefix holding `.kong_env`'
            cand --daemon 'Report readiness on standard error, then detach from the terminal'
            cand --v 'Verbose output (info-level messages on the terminal)'
            cand --vv 'Debug output'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kong;help'= {
            cand start 'Start a node (in the background unless nginx_daemon = off)'
            cand stop 'Stop a running node at once'
            cand quit 'Stop a running node gracefully: stop accepting, finish in-flight requests'
            cand restart 'Stop (if running) and start a node'
            cand reload 'Re-read the configuration and apply it without dropping requests'
            cand health 'Check that the node on a prefix is running'
            cand check 'Validate a configuration file'
            cand prepare 'Prepare the prefix directory without starting'
            cand version 'Print the version'
            cand migrations 'Manage the database schema: bootstrap, up, finish, list, status, reset'
            cand config 'Declarative configuration tools'
            cand _serve 'Run the node in this process (used by `kong start`)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'kong;help;start'= {
        }
        &'kong;help;stop'= {
        }
        &'kong;help;quit'= {
        }
        &'kong;help;restart'= {
        }
        &'kong;help;reload'= {
        }
        &'kong;help;health'= {
        }
        &'kong;help;check'= {
        }
        &'kong;help;prepare'= {
        }
        &'kong;help;version'= {
        }
        &'kong;help;migrations'= {
            cand bootstrap 'Create the schema on an empty database and run every migration'
            cand up 'Run the new migrations of a newer kong; those with a teardown stay pending'
            cand finish 'Run the teardown of pending migrations, once every node runs the new version'
            cand list 'List executed, pending and new migrations (exit 0 up to date, 3 needs bootstrap, 4 pending, 5 new)'
            cand status 'Print the migration state as JSON'
            cand reset 'Drop every table of the database: all configuration is lost'
        }
        &'kong;help;migrations;bootstrap'= {
        }
        &'kong;help;migrations;up'= {
        }
        &'kong;help;migrations;finish'= {
        }
        &'kong;help;migrations;list'= {
        }
        &'kong;help;migrations;status'= {
        }
        &'kong;help;migrations;reset'= {
        }
        &'kong;help;config'= {
            cand init 'Write an example declarative configuration file (default ./kong.yml)'
            cand parse 'Check a declarative configuration file (YAML or JSON) without loading it anywhere'
            cand db_import 'Import a declarative configuration file into the database, all or nothing'
            cand db_export 'Export the database as a declarative configuration file (YAML)'
        }
        &'kong;help;config;init'= {
        }
        &'kong;help;config;parse'= {
        }
        &'kong;help;config;db_import'= {
        }
        &'kong;help;config;db_export'= {
        }
        &'kong;help;_serve'= {
        }
        &'kong;help;help'= {
        }
    ]
    $completions[$command]
}
