
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'kong' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'kong'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'kong' {
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Verbose output (info-level messages on the terminal)')
            [CompletionResult]::new('--vv', '--vv', [CompletionResultType]::ParameterName, 'Debug output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('start', 'start', [CompletionResultType]::ParameterValue, 'Start a node (in the background unless nginx_daemon = off)')
            [CompletionResult]::new('stop', 'stop', [CompletionResultType]::ParameterValue, 'Stop a running node at once')
            [CompletionResult]::new('quit', 'quit', [CompletionResultType]::ParameterValue, 'Stop a running node gracefully: stop accepting, finish in-flight requests')
            [CompletionResult]::new('restart', 'restart', [CompletionResultType]::ParameterValue, 'Stop (if running) and start a node')
            [CompletionResult]::new('reload', 'reload', [CompletionResultType]::ParameterValue, 'Re-read the configuration and apply it without dropping requests')
            [CompletionResult]::new('health', 'health', [CompletionResultType]::ParameterValue, 'Check that the node on a prefix is running')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Validate a configuration file')
            [CompletionResult]::new('prepare', 'prepare', [CompletionResultType]::ParameterValue, 'Prepare the prefix directory without starting')
            [CompletionResult]::new('version', 'version', [CompletionResultType]::ParameterValue, 'Print the version')
            [CompletionResult]::new('migrations', 'migrations', [CompletionResultType]::ParameterValue, 'Manage the database schema: bootstrap, up, finish, list, status, reset')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Declarative configuration tools')
            [CompletionResult]::new('_serve', '_serve', [CompletionResultType]::ParameterValue, 'Run the node in this process (used by `kong start`)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'kong;start' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('--conf', '--conf', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Override the prefix directory')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Override the prefix directory')
            [CompletionResult]::new('--db-timeout', '--db-timeout', [CompletionResultType]::ParameterName, 'Database timeout in seconds (overrides pg_timeout)')
            [CompletionResult]::new('--lock-timeout', '--lock-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the migrations lock with --run-migrations')
            [CompletionResult]::new('--nginx-conf', '--nginx-conf', [CompletionResultType]::ParameterName, 'Accepted for compatibility with Kong; there is no nginx template here')
            [CompletionResult]::new('--nginx-conf-flags', '--nginx-conf-flags', [CompletionResultType]::ParameterName, 'Accepted for compatibility with Kong; ignored')
            [CompletionResult]::new('--run-migrations', '--run-migrations', [CompletionResultType]::ParameterName, 'Run pending database migrations before starting')
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Verbose output (info-level messages on the terminal)')
            [CompletionResult]::new('--vv', '--vv', [CompletionResultType]::ParameterName, 'Debug output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kong;stop' {
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Prefix directory of the node (default: the configured default prefix)')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Prefix directory of the node (default: the configured default prefix)')
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Verbose output (info-level messages on the terminal)')
            [CompletionResult]::new('--vv', '--vv', [CompletionResultType]::ParameterName, 'Debug output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kong;quit' {
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Prefix directory of the node (default: the configured default prefix)')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Prefix directory of the node (default: the configured default prefix)')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Seconds to wait for in-flight requests before stopping forcefully (minimum 1)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for in-flight requests before stopping forcefully (minimum 1)')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'Seconds to wait before starting the graceful shutdown')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Seconds to wait before starting the graceful shutdown')
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Verbose output (info-level messages on the terminal)')
            [CompletionResult]::new('--vv', '--vv', [CompletionResultType]::ParameterName, 'Debug output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kong;restart' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('--conf', '--conf', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Override the prefix directory')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Override the prefix directory')
            [CompletionResult]::new('--db-timeout', '--db-timeout', [CompletionResultType]::ParameterName, 'Database timeout in seconds (overrides pg_timeout)')
            [CompletionResult]::new('--lock-timeout', '--lock-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the migrations lock with --run-migrations')
            [CompletionResult]::new('--nginx-conf', '--nginx-conf', [CompletionResultType]::ParameterName, 'Accepted for compatibility with Kong; there is no nginx template here')
            [CompletionResult]::new('--nginx-conf-flags', '--nginx-conf-flags', [CompletionResultType]::ParameterName, 'Accepted for compatibility with Kong; ignored')
            [CompletionResult]::new('--run-migrations', '--run-migrations', [CompletionResultType]::ParameterName, 'Run pending database migrations before starting')
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Verbose output (info-level messages on the terminal)')
            [CompletionResult]::new('--vv', '--vv', [CompletionResultType]::ParameterName, 'Debug output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kong;reload' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('--conf', '--conf', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Override the prefix directory')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Override the prefix directory')
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Verbose output (info-level messages on the terminal)')
            [CompletionResult]::new('--vv', '--vv', [CompletionResultType]::ParameterName, 'Debug output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kong;health' {
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Prefix directory of the node (default: the configured default prefix)')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Prefix directory of the node (default: the configured default prefix)')
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Verbose output (info-level messages on the terminal)')
            [CompletionResult]::new('--vv', '--vv', [CompletionResultType]::ParameterName, 'Debug output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kong;check' {
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Verbose output (info-level messages on the terminal)')
            [CompletionResult]::new('--vv', '--vv', [CompletionResultType]::ParameterName, 'Debug output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kong;prepare' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('--conf', '--conf', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Override the prefix directory')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Override the prefix directory')
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Verbose output (info-level messages on the terminal)')
            [CompletionResult]::new('--vv', '--vv', [CompletionResultType]::ParameterName, 'Debug output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kong;version' {
            [CompletionResult]::new('-a', '-a', [CompletionResultType]::ParameterName, 'Also print component versions')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Also print component versions')
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Verbose output (info-level messages on the terminal)')
            [CompletionResult]::new('--vv', '--vv', [CompletionResultType]::ParameterName, 'Debug output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kong;migrations' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('--conf', '--conf', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Override the prefix directory (where the SQLite file lives)')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Override the prefix directory (where the SQLite file lives)')
            [CompletionResult]::new('--db-timeout', '--db-timeout', [CompletionResultType]::ParameterName, 'Database timeout in seconds (overrides pg_timeout)')
            [CompletionResult]::new('--lock-timeout', '--lock-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for another node''s migrations lock; also how long ours lives')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'bootstrap: reset the database first; up: also re-run migrations that already ran')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'bootstrap: reset the database first; up: also re-run migrations that already ran')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'reset: do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'reset: do not ask for confirmation')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Verbose output (info-level messages on the terminal)')
            [CompletionResult]::new('--vv', '--vv', [CompletionResultType]::ParameterName, 'Debug output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('bootstrap', 'bootstrap', [CompletionResultType]::ParameterValue, 'Create the schema on an empty database and run every migration')
            [CompletionResult]::new('up', 'up', [CompletionResultType]::ParameterValue, 'Run the new migrations of a newer kong; those with a teardown stay pending')
            [CompletionResult]::new('finish', 'finish', [CompletionResultType]::ParameterValue, 'Run the teardown of pending migrations, once every node runs the new version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List executed, pending and new migrations (exit 0 up to date, 3 needs bootstrap, 4 pending, 5 new)')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Print the migration state as JSON')
            [CompletionResult]::new('reset', 'reset', [CompletionResultType]::ParameterValue, 'Drop every table of the database: all configuration is lost')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'kong;migrations;bootstrap' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('--conf', '--conf', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Override the prefix directory (where the SQLite file lives)')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Override the prefix directory (where the SQLite file lives)')
            [CompletionResult]::new('--db-timeout', '--db-timeout', [CompletionResultType]::ParameterName, 'Database timeout in seconds (overrides pg_timeout)')
            [CompletionResult]::new('--lock-timeout', '--lock-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for another node''s migrations lock; also how long ours lives')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'bootstrap: reset the database first; up: also re-run migrations that already ran')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'bootstrap: reset the database first; up: also re-run migrations that already ran')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'reset: do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'reset: do not ask for confirmation')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Verbose output (info-level messages on the terminal)')
            [CompletionResult]::new('--vv', '--vv', [CompletionResultType]::ParameterName, 'Debug output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kong;migrations;up' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('--conf', '--conf', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Override the prefix directory (where the SQLite file lives)')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Override the prefix directory (where the SQLite file lives)')
            [CompletionResult]::new('--db-timeout', '--db-timeout', [CompletionResultType]::ParameterName, 'Database timeout in seconds (overrides pg_timeout)')
            [CompletionResult]::new('--lock-timeout', '--lock-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for another node''s migrations lock; also how long ours lives')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'bootstrap: reset the database first; up: also re-run migrations that already ran')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'bootstrap: reset the database first; up: also re-run migrations that already ran')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'reset: do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'reset: do not ask for confirmation')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Verbose output (info-level messages on the terminal)')
            [CompletionResult]::new('--vv', '--vv', [CompletionResultType]::ParameterName, 'Debug output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kong;migrations;finish' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('--conf', '--conf', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Override the prefix directory (where the SQLite file lives)')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Override the prefix directory (where the SQLite file lives)')
            [CompletionResult]::new('--db-timeout', '--db-timeout', [CompletionResultType]::ParameterName, 'Database timeout in seconds (overrides pg_timeout)')
            [CompletionResult]::new('--lock-timeout', '--lock-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for another node''s migrations lock; also how long ours lives')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'bootstrap: reset the database first; up: also re-run migrations that already ran')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'bootstrap: reset the database first; up: also re-run migrations that already ran')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'reset: do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'reset: do not ask for confirmation')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Verbose output (info-level messages on the terminal)')
            [CompletionResult]::new('--vv', '--vv', [CompletionResultType]::ParameterName, 'Debug output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kong;migrations;list' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('--conf', '--conf', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Override the prefix directory (where the SQLite file lives)')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Override the prefix directory (where the SQLite file lives)')
            [CompletionResult]::new('--db-timeout', '--db-timeout', [CompletionResultType]::ParameterName, 'Database timeout in seconds (overrides pg_timeout)')
            [CompletionResult]::new('--lock-timeout', '--lock-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for another node''s migrations lock; also how long ours lives')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'bootstrap: reset the database first; up: also re-run migrations that already ran')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'bootstrap: reset the database first; up: also re-run migrations that already ran')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'reset: do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'reset: do not ask for confirmation')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Verbose output (info-level messages on the terminal)')
            [CompletionResult]::new('--vv', '--vv', [CompletionResultType]::ParameterName, 'Debug output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kong;migrations;status' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('--conf', '--conf', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Override the prefix directory (where the SQLite file lives)')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Override the prefix directory (where the SQLite file lives)')
            [CompletionResult]::new('--db-timeout', '--db-timeout', [CompletionResultType]::ParameterName, 'Database timeout in seconds (overrides pg_timeout)')
            [CompletionResult]::new('--lock-timeout', '--lock-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for another node''s migrations lock; also how long ours lives')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'bootstrap: reset the database first; up: also re-run migrations that already ran')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'bootstrap: reset the database first; up: also re-run migrations that already ran')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'reset: do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'reset: do not ask for confirmation')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Verbose output (info-level messages on the terminal)')
            [CompletionResult]::new('--vv', '--vv', [CompletionResultType]::ParameterName, 'Debug output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kong;migrations;reset' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('--conf', '--conf', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Override the prefix directory (where the SQLite file lives)')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Override the prefix directory (where the SQLite file lives)')
            [CompletionResult]::new('--db-timeout', '--db-timeout', [CompletionResultType]::ParameterName, 'Database timeout in seconds (overrides pg_timeout)')
            [CompletionResult]::new('--lock-timeout', '--lock-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for another node''s migrations lock; also how long ours lives')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'bootstrap: reset the database first; up: also re-run migrations that already ran')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'bootstrap: reset the database first; up: also re-run migrations that already ran')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'reset: do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'reset: do not ask for confirmation')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Verbose output (info-level messages on the terminal)')
            [CompletionResult]::new('--vv', '--vv', [CompletionResultType]::ParameterName, 'Debug output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kong;migrations;help' {
            [CompletionResult]::new('bootstrap', 'bootstrap', [CompletionResultType]::ParameterValue, 'Create the schema on an empty database and run every migration')
            [CompletionResult]::new('up', 'up', [CompletionResultType]::ParameterValue, 'Run the new migrations of a newer kong; those with a teardown stay pending')
            [CompletionResult]::new('finish', 'finish', [CompletionResultType]::ParameterValue, 'Run the teardown of pending migrations, once every node runs the new version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List executed, pending and new migrations (exit 0 up to date, 3 needs bootstrap, 4 pending, 5 new)')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Print the migration state as JSON')
            [CompletionResult]::new('reset', 'reset', [CompletionResultType]::ParameterValue, 'Drop every table of the database: all configuration is lost')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'kong;migrations;help;bootstrap' {
            break
        }
        'kong;migrations;help;up' {
            break
        }
        'kong;migrations;help;finish' {
            break
        }
        'kong;migrations;help;list' {
            break
        }
        'kong;migrations;help;status' {
            break
        }
        'kong;migrations;help;reset' {
            break
        }
        'kong;migrations;help;help' {
            break
        }
        'kong;config' {
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Verbose output (info-level messages on the terminal)')
            [CompletionResult]::new('--vv', '--vv', [CompletionResultType]::ParameterName, 'Debug output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Write an example declarative configuration file (default ./kong.yml)')
            [CompletionResult]::new('parse', 'parse', [CompletionResultType]::ParameterValue, 'Check a declarative configuration file (YAML or JSON) without loading it anywhere')
            [CompletionResult]::new('db_import', 'db_import', [CompletionResultType]::ParameterValue, 'Import a declarative configuration file into the database, all or nothing')
            [CompletionResult]::new('db_export', 'db_export', [CompletionResultType]::ParameterValue, 'Export the database as a declarative configuration file (YAML)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'kong;config;init' {
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Verbose output (info-level messages on the terminal)')
            [CompletionResult]::new('--vv', '--vv', [CompletionResultType]::ParameterName, 'Debug output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kong;config;parse' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('--conf', '--conf', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Override the prefix directory')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Override the prefix directory')
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Verbose output (info-level messages on the terminal)')
            [CompletionResult]::new('--vv', '--vv', [CompletionResultType]::ParameterName, 'Debug output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kong;config;db_import' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('--conf', '--conf', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Override the prefix directory')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Override the prefix directory')
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Verbose output (info-level messages on the terminal)')
            [CompletionResult]::new('--vv', '--vv', [CompletionResultType]::ParameterName, 'Debug output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kong;config;db_export' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('--conf', '--conf', [CompletionResultType]::ParameterName, 'Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Override the prefix directory')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Override the prefix directory')
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Verbose output (info-level messages on the terminal)')
            [CompletionResult]::new('--vv', '--vv', [CompletionResultType]::ParameterName, 'Debug output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kong;config;help' {
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Write an example declarative configuration file (default ./kong.yml)')
            [CompletionResult]::new('parse', 'parse', [CompletionResultType]::ParameterValue, 'Check a declarative configuration file (YAML or JSON) without loading it anywhere')
            [CompletionResult]::new('db_import', 'db_import', [CompletionResultType]::ParameterValue, 'Import a declarative configuration file into the database, all or nothing')
            [CompletionResult]::new('db_export', 'db_export', [CompletionResultType]::ParameterValue, 'Export the database as a declarative configuration file (YAML)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'kong;config;help;init' {
            break
        }
        'kong;config;help;parse' {
            break
        }
        'kong;config;help;db_import' {
            break
        }
        'kong;config;help;db_export' {
            break
        }
        'kong;config;help;help' {
            break
        }
        'kong;_serve' {
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Prefix holding `.kong_env`')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Prefix holding `.kong_env`')
            [CompletionResult]::new('--daemon', '--daemon', [CompletionResultType]::ParameterName, 'Report readiness on standard error, then detach from the terminal')
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Verbose output (info-level messages on the terminal)')
            [CompletionResult]::new('--vv', '--vv', [CompletionResultType]::ParameterName, 'Debug output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kong;help' {
            [CompletionResult]::new('start', 'start', [CompletionResultType]::ParameterValue, 'Start a node (in the background unless nginx_daemon = off)')
            [CompletionResult]::new('stop', 'stop', [CompletionResultType]::ParameterValue, 'Stop a running node at once')
            [CompletionResult]::new('quit', 'quit', [CompletionResultType]::ParameterValue, 'Stop a running node gracefully: stop accepting, finish in-flight requests')
            [CompletionResult]::new('restart', 'restart', [CompletionResultType]::ParameterValue, 'Stop (if running) and start a node')
            [CompletionResult]::new('reload', 'reload', [CompletionResultType]::ParameterValue, 'Re-read the configuration and apply it without dropping requests')
            [CompletionResult]::new('health', 'health', [CompletionResultType]::ParameterValue, 'Check that the node on a prefix is running')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Validate a configuration file')
            [CompletionResult]::new('prepare', 'prepare', [CompletionResultType]::ParameterValue, 'Prepare the prefix directory without starting')
            [CompletionResult]::new('version', 'version', [CompletionResultType]::ParameterValue, 'Print the version')
            [CompletionResult]::new('migrations', 'migrations', [CompletionResultType]::ParameterValue, 'Manage the database schema: bootstrap, up, finish, list, status, reset')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Declarative configuration tools')
            [CompletionResult]::new('_serve', '_serve', [CompletionResultType]::ParameterValue, 'Run the node in this process (used by `kong start`)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'kong;help;start' {
            break
        }
        'kong;help;stop' {
            break
        }
        'kong;help;quit' {
            break
        }
        'kong;help;restart' {
            break
        }
        'kong;help;reload' {
            break
        }
        'kong;help;health' {
            break
        }
        'kong;help;check' {
            break
        }
        'kong;help;prepare' {
            break
        }
        'kong;help;version' {
            break
        }
        'kong;help;migrations' {
            [CompletionResult]::new('bootstrap', 'bootstrap', [CompletionResultType]::ParameterValue, 'Create the schema on an empty database and run every migration')
            [CompletionResult]::new('up', 'up', [CompletionResultType]::ParameterValue, 'Run the new migrations of a newer kong; those with a teardown stay pending')
            [CompletionResult]::new('finish', 'finish', [CompletionResultType]::ParameterValue, 'Run the teardown of pending migrations, once every node runs the new version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List executed, pending and new migrations (exit 0 up to date, 3 needs bootstrap, 4 pending, 5 new)')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Print the migration state as JSON')
            [CompletionResult]::new('reset', 'reset', [CompletionResultType]::ParameterValue, 'Drop every table of the database: all configuration is lost')
            break
        }
        'kong;help;migrations;bootstrap' {
            break
        }
        'kong;help;migrations;up' {
            break
        }
        'kong;help;migrations;finish' {
            break
        }
        'kong;help;migrations;list' {
            break
        }
        'kong;help;migrations;status' {
            break
        }
        'kong;help;migrations;reset' {
            break
        }
        'kong;help;config' {
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Write an example declarative configuration file (default ./kong.yml)')
            [CompletionResult]::new('parse', 'parse', [CompletionResultType]::ParameterValue, 'Check a declarative configuration file (YAML or JSON) without loading it anywhere')
            [CompletionResult]::new('db_import', 'db_import', [CompletionResultType]::ParameterValue, 'Import a declarative configuration file into the database, all or nothing')
            [CompletionResult]::new('db_export', 'db_export', [CompletionResultType]::ParameterValue, 'Export the database as a declarative configuration file (YAML)')
            break
        }
        'kong;help;config;init' {
            break
        }
        'kong;help;config;parse' {
            break
        }
        'kong;help;config;db_import' {
            break
        }
        'kong;help;config;db_export' {
            break
        }
        'kong;help;_serve' {
            break
        }
        'kong;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
