
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
