# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_hlsys_global_optspecs
    string join \n c/config= h/help V/version
end

function __fish_hlsys_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_hlsys_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_hlsys_using_subcommand
    set -l cmd (__fish_hlsys_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c hlsys -n "__fish_hlsys_needs_command" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hlsys -n "__fish_hlsys_needs_command" -s V -l version -d 'Print version'
complete -c hlsys -n "__fish_hlsys_needs_command" -f -a "stacks" -d 'List the stacks of the tree with layer, networks, GPU need and dependencies'
complete -c hlsys -n "__fish_hlsys_needs_command" -f -a "plan" -d 'Print the units the generator would write (a dry run), or the start order'
complete -c hlsys -n "__fish_hlsys_needs_command" -f -a "reload" -d 'Reload systemd over D-Bus so the generator runs again [--start: then start homelab.target]'
complete -c hlsys -n "__fish_hlsys_needs_command" -f -a "supervise" -d 'Run a stack as the main process of its unit (used by the generated units)'
complete -c hlsys -n "__fish_hlsys_needs_command" -f -a "network" -d 'Create the configured Docker networks, or show their state and drift'
complete -c hlsys -n "__fish_hlsys_needs_command" -f -a "gpu" -d 'Register the nvidia runtime with Docker, or show GPU support per stack'
complete -c hlsys -n "__fish_hlsys_needs_command" -f -a "check" -d 'Preflight: Docker, Compose, config, trust (owners and modes), tree, networks, GPU, files, ports, restart policies'
complete -c hlsys -n "__fish_hlsys_needs_command" -f -a "start" -d 'Start stacks, layers or everything over D-Bus, following every job to its end'
complete -c hlsys -n "__fish_hlsys_needs_command" -f -a "stop" -d 'Stop stacks, layers or everything (what requires them stops too)'
complete -c hlsys -n "__fish_hlsys_needs_command" -f -a "restart" -d 'Restart stacks, layers or everything'
complete -c hlsys -n "__fish_hlsys_needs_command" -f -a "status" -d 'The tree: layer → stack → containers, with unit state, supervisor status and health'
complete -c hlsys -n "__fish_hlsys_needs_command" -f -a "logs" -d 'The journal of a stack, a layer or everything (journalctl -u …)'
complete -c hlsys -n "__fish_hlsys_needs_command" -f -a "enable" -d 'Make stacks part of their layer again (recorded in <config>.d/50-hlsys-enable.toml)'
complete -c hlsys -n "__fish_hlsys_needs_command" -f -a "disable" -d 'Take stacks out of their layer: not started with it, nor at boot'
complete -c hlsys -n "__fish_hlsys_needs_command" -f -a "swarm" -d 'Deploy the tree to a Docker Swarm layer by layer, health-gated; show or remove it'
complete -c hlsys -n "__fish_hlsys_needs_command" -f -a "notify" -d 'Send the [notify] messages: a failed unit (from OnFailure=), the ready message, a test'
complete -c hlsys -n "__fish_hlsys_needs_command" -f -a "metrics" -d 'Print Prometheus metrics of the tree [--serve: answer one HTTP request on stdin]'
complete -c hlsys -n "__fish_hlsys_needs_command" -f -a "update" -d 'Whether the registries have newer images for the stacks (--check: pulls nothing)'
complete -c hlsys -n "__fish_hlsys_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hlsys -n "__fish_hlsys_using_subcommand stacks" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand stacks" -l json -d 'Print JSON: {"stacks": [...], "errors": [...]}'
complete -c hlsys -n "__fish_hlsys_using_subcommand stacks" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand plan" -l out -d 'Write the units (and .wants links) into DIR instead of printing them' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand plan" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand plan" -l graph -d 'Print layers and stacks in start order instead of the units'
complete -c hlsys -n "__fish_hlsys_using_subcommand plan" -l dot -d 'Print the dependency graph in Graphviz dot format'
complete -c hlsys -n "__fish_hlsys_using_subcommand plan" -l json -d 'Print {"units": [{"name","content"}], "links": [{"dir","unit"}], "errors": [...]}'
complete -c hlsys -n "__fish_hlsys_using_subcommand plan" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand reload" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand reload" -l start -d 'Also start the root target (homelab.target) after reloading, without waiting'
complete -c hlsys -n "__fish_hlsys_using_subcommand reload" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand supervise" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand supervise" -l down -d 'Bring the stack down instead (`docker compose down`, volumes kept); used as ExecStop'
complete -c hlsys -n "__fish_hlsys_using_subcommand supervise" -l cleanup -d 'Bring the stack down only if containers are left over; used as ExecStopPost'
complete -c hlsys -n "__fish_hlsys_using_subcommand supervise" -l prepare -d 'Pull the stack\'s missing images and create its containers, start nothing; used as ExecStart of the stack\'s preparation unit'
complete -c hlsys -n "__fish_hlsys_using_subcommand supervise" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand network; and not __fish_seen_subcommand_from ensure status help" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand network; and not __fish_seen_subcommand_from ensure status help" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand network; and not __fish_seen_subcommand_from ensure status help" -f -a "ensure" -d 'Create the configured networks that are missing (idempotent, safe to run concurrently)'
complete -c hlsys -n "__fish_hlsys_using_subcommand network; and not __fish_seen_subcommand_from ensure status help" -f -a "status" -d 'Show each configured network and each other hlsys-managed one: drift, containers'
complete -c hlsys -n "__fish_hlsys_using_subcommand network; and not __fish_seen_subcommand_from ensure status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hlsys -n "__fish_hlsys_using_subcommand network; and __fish_seen_subcommand_from ensure" -l root -d 'Host root for /proc/net/route (for tests)' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand network; and __fish_seen_subcommand_from ensure" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand network; and __fish_seen_subcommand_from ensure" -l dry-run -d 'Show what would be done, change nothing'
complete -c hlsys -n "__fish_hlsys_using_subcommand network; and __fish_seen_subcommand_from ensure" -l recreate -d 'Replace drifted networks that hlsys manages and no container uses'
complete -c hlsys -n "__fish_hlsys_using_subcommand network; and __fish_seen_subcommand_from ensure" -l json -d 'Print JSON: {"ok": bool, "networks": [...], "problems": [...]}'
complete -c hlsys -n "__fish_hlsys_using_subcommand network; and __fish_seen_subcommand_from ensure" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand network; and __fish_seen_subcommand_from status" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand network; and __fish_seen_subcommand_from status" -l json -d 'Print JSON: [{name, configured, exists, id, managed, drift, containers, duplicates}]'
complete -c hlsys -n "__fish_hlsys_using_subcommand network; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand network; and __fish_seen_subcommand_from help" -f -a "ensure" -d 'Create the configured networks that are missing (idempotent, safe to run concurrently)'
complete -c hlsys -n "__fish_hlsys_using_subcommand network; and __fish_seen_subcommand_from help" -f -a "status" -d 'Show each configured network and each other hlsys-managed one: drift, containers'
complete -c hlsys -n "__fish_hlsys_using_subcommand network; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hlsys -n "__fish_hlsys_using_subcommand gpu; and not __fish_seen_subcommand_from setup status help" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand gpu; and not __fish_seen_subcommand_from setup status help" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand gpu; and not __fish_seen_subcommand_from setup status help" -f -a "setup" -d 'Register nvidia-container-runtime in /etc/docker/daemon.json (keeps other keys, backs up)'
complete -c hlsys -n "__fish_hlsys_using_subcommand gpu; and not __fish_seen_subcommand_from setup status help" -f -a "status" -d 'Show the host\'s GPU support and whether each GPU stack\'s mechanisms work here'
complete -c hlsys -n "__fish_hlsys_using_subcommand gpu; and not __fish_seen_subcommand_from setup status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hlsys -n "__fish_hlsys_using_subcommand gpu; and __fish_seen_subcommand_from setup" -l root -d 'Treat DIR as the root file system (daemon.json and PATH are looked up below it)' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand gpu; and __fish_seen_subcommand_from setup" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand gpu; and __fish_seen_subcommand_from setup" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand gpu; and __fish_seen_subcommand_from status" -l root -d 'Host root for /proc, /dev and /etc/cdi (for tests)' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand gpu; and __fish_seen_subcommand_from status" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand gpu; and __fish_seen_subcommand_from status" -l json -d 'Print JSON: {"host": {...}, "stacks": [...]}'
complete -c hlsys -n "__fish_hlsys_using_subcommand gpu; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand gpu; and __fish_seen_subcommand_from help" -f -a "setup" -d 'Register nvidia-container-runtime in /etc/docker/daemon.json (keeps other keys, backs up)'
complete -c hlsys -n "__fish_hlsys_using_subcommand gpu; and __fish_seen_subcommand_from help" -f -a "status" -d 'Show the host\'s GPU support and whether each GPU stack\'s mechanisms work here'
complete -c hlsys -n "__fish_hlsys_using_subcommand gpu; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hlsys -n "__fish_hlsys_using_subcommand check" -l root -d 'Host root for /proc, /dev and /etc/cdi (for tests)' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand check" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand check" -l json -d 'Print JSON: {"ok": bool, "checks": [{name, status, message, remedy}]}'
complete -c hlsys -n "__fish_hlsys_using_subcommand check" -l gpu -d 'Run only the GPU checks'
complete -c hlsys -n "__fish_hlsys_using_subcommand check" -l strict -d 'Warnings fail too (exit 1)'
complete -c hlsys -n "__fish_hlsys_using_subcommand check" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand start" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand start" -l no-block -d 'Enqueue the jobs and return at once, without waiting for them to finish'
complete -c hlsys -n "__fish_hlsys_using_subcommand start" -l json -d 'Print every job\'s result as JSON on stdout: {"ok", "results": [{"unit","job","result"}]}'
complete -c hlsys -n "__fish_hlsys_using_subcommand start" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand stop" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand stop" -l no-block -d 'Enqueue the jobs and return at once, without waiting for them to finish'
complete -c hlsys -n "__fish_hlsys_using_subcommand stop" -l json -d 'Print every job\'s result as JSON on stdout: {"ok", "results": [{"unit","job","result"}]}'
complete -c hlsys -n "__fish_hlsys_using_subcommand stop" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand restart" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand restart" -l no-block -d 'Enqueue the jobs and return at once, without waiting for them to finish'
complete -c hlsys -n "__fish_hlsys_using_subcommand restart" -l json -d 'Print every job\'s result as JSON on stdout: {"ok", "results": [{"unit","job","result"}]}'
complete -c hlsys -n "__fish_hlsys_using_subcommand restart" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand status" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand status" -l json -d 'Print the tree as JSON'
complete -c hlsys -n "__fish_hlsys_using_subcommand status" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand logs" -s n -l lines -d 'Show the last N lines' -r
complete -c hlsys -n "__fish_hlsys_using_subcommand logs" -l since -d 'Show lines since T (any time journalctl accepts: "1h ago", "today", "2024-05-01 10:00")' -r
complete -c hlsys -n "__fish_hlsys_using_subcommand logs" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand logs" -s f -l follow -d 'Follow: keep printing new lines'
complete -c hlsys -n "__fish_hlsys_using_subcommand logs" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand enable" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand enable" -l now -d 'Also start (enable) or stop (disable) the stacks now'
complete -c hlsys -n "__fish_hlsys_using_subcommand enable" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand disable" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand disable" -l now -d 'Also start (enable) or stop (disable) the stacks now'
complete -c hlsys -n "__fish_hlsys_using_subcommand disable" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and not __fish_seen_subcommand_from plan deploy status rm help" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and not __fish_seen_subcommand_from plan deploy status rm help" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and not __fish_seen_subcommand_from plan deploy status rm help" -f -a "plan" -d 'Per layer: each stack\'s document for `docker stack deploy`, notes, GPU placement; changes nothing'
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and not __fish_seen_subcommand_from plan deploy status rm help" -f -a "deploy" -d 'Overlay networks, then each layer\'s stacks, waiting until every service runs healthy'
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and not __fish_seen_subcommand_from plan deploy status rm help" -f -a "status" -d 'Per layer and stack: services, replicas, tasks with state, node and errors'
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and not __fish_seen_subcommand_from plan deploy status rm help" -f -a "rm" -d 'Remove the stacks in reverse layer order (named volumes and networks are kept)'
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and not __fish_seen_subcommand_from plan deploy status rm help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and __fish_seen_subcommand_from plan" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and __fish_seen_subcommand_from plan" -l json -d 'Print JSON'
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and __fish_seen_subcommand_from plan" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and __fish_seen_subcommand_from deploy" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and __fish_seen_subcommand_from deploy" -l json -d 'Print JSON'
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and __fish_seen_subcommand_from deploy" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and __fish_seen_subcommand_from status" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and __fish_seen_subcommand_from status" -l json -d 'Print JSON'
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and __fish_seen_subcommand_from rm" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and __fish_seen_subcommand_from rm" -l json -d 'Print JSON'
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and __fish_seen_subcommand_from help" -f -a "plan" -d 'Per layer: each stack\'s document for `docker stack deploy`, notes, GPU placement; changes nothing'
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and __fish_seen_subcommand_from help" -f -a "deploy" -d 'Overlay networks, then each layer\'s stacks, waiting until every service runs healthy'
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and __fish_seen_subcommand_from help" -f -a "status" -d 'Per layer and stack: services, replicas, tasks with state, node and errors'
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and __fish_seen_subcommand_from help" -f -a "rm" -d 'Remove the stacks in reverse layer order (named volumes and networks are kept)'
complete -c hlsys -n "__fish_hlsys_using_subcommand swarm; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hlsys -n "__fish_hlsys_using_subcommand notify" -l failed -d 'Report UNIT as failed (with the others failing within a few seconds)' -r
complete -c hlsys -n "__fish_hlsys_using_subcommand notify" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand notify" -l ready -d 'Send "homelab ready: N/M stacks healthy in S s"'
complete -c hlsys -n "__fish_hlsys_using_subcommand notify" -l test -d 'Send a test message to every target'
complete -c hlsys -n "__fish_hlsys_using_subcommand notify" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand metrics" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand metrics" -l serve -d 'Answer one HTTP request on stdin/stdout (the metrics socket\'s service)'
complete -c hlsys -n "__fish_hlsys_using_subcommand metrics" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand update" -s c -l config -d 'Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]' -r -F
complete -c hlsys -n "__fish_hlsys_using_subcommand update" -l check -d 'Only look: compare each image\'s local digest with its registry\'s, pull nothing'
complete -c hlsys -n "__fish_hlsys_using_subcommand update" -l json -d 'Print JSON: {"images": [{"stack","image","services","state","local_id", "local_digest","remote_digest","local_created","error"}], "updates": N, "errors": N}'
complete -c hlsys -n "__fish_hlsys_using_subcommand update" -s h -l help -d 'Print help'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and not __fish_seen_subcommand_from stacks plan reload supervise network gpu check start stop restart status logs enable disable swarm notify metrics update help" -f -a "stacks" -d 'List the stacks of the tree with layer, networks, GPU need and dependencies'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and not __fish_seen_subcommand_from stacks plan reload supervise network gpu check start stop restart status logs enable disable swarm notify metrics update help" -f -a "plan" -d 'Print the units the generator would write (a dry run), or the start order'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and not __fish_seen_subcommand_from stacks plan reload supervise network gpu check start stop restart status logs enable disable swarm notify metrics update help" -f -a "reload" -d 'Reload systemd over D-Bus so the generator runs again [--start: then start homelab.target]'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and not __fish_seen_subcommand_from stacks plan reload supervise network gpu check start stop restart status logs enable disable swarm notify metrics update help" -f -a "supervise" -d 'Run a stack as the main process of its unit (used by the generated units)'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and not __fish_seen_subcommand_from stacks plan reload supervise network gpu check start stop restart status logs enable disable swarm notify metrics update help" -f -a "network" -d 'Create the configured Docker networks, or show their state and drift'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and not __fish_seen_subcommand_from stacks plan reload supervise network gpu check start stop restart status logs enable disable swarm notify metrics update help" -f -a "gpu" -d 'Register the nvidia runtime with Docker, or show GPU support per stack'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and not __fish_seen_subcommand_from stacks plan reload supervise network gpu check start stop restart status logs enable disable swarm notify metrics update help" -f -a "check" -d 'Preflight: Docker, Compose, config, trust (owners and modes), tree, networks, GPU, files, ports, restart policies'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and not __fish_seen_subcommand_from stacks plan reload supervise network gpu check start stop restart status logs enable disable swarm notify metrics update help" -f -a "start" -d 'Start stacks, layers or everything over D-Bus, following every job to its end'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and not __fish_seen_subcommand_from stacks plan reload supervise network gpu check start stop restart status logs enable disable swarm notify metrics update help" -f -a "stop" -d 'Stop stacks, layers or everything (what requires them stops too)'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and not __fish_seen_subcommand_from stacks plan reload supervise network gpu check start stop restart status logs enable disable swarm notify metrics update help" -f -a "restart" -d 'Restart stacks, layers or everything'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and not __fish_seen_subcommand_from stacks plan reload supervise network gpu check start stop restart status logs enable disable swarm notify metrics update help" -f -a "status" -d 'The tree: layer → stack → containers, with unit state, supervisor status and health'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and not __fish_seen_subcommand_from stacks plan reload supervise network gpu check start stop restart status logs enable disable swarm notify metrics update help" -f -a "logs" -d 'The journal of a stack, a layer or everything (journalctl -u …)'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and not __fish_seen_subcommand_from stacks plan reload supervise network gpu check start stop restart status logs enable disable swarm notify metrics update help" -f -a "enable" -d 'Make stacks part of their layer again (recorded in <config>.d/50-hlsys-enable.toml)'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and not __fish_seen_subcommand_from stacks plan reload supervise network gpu check start stop restart status logs enable disable swarm notify metrics update help" -f -a "disable" -d 'Take stacks out of their layer: not started with it, nor at boot'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and not __fish_seen_subcommand_from stacks plan reload supervise network gpu check start stop restart status logs enable disable swarm notify metrics update help" -f -a "swarm" -d 'Deploy the tree to a Docker Swarm layer by layer, health-gated; show or remove it'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and not __fish_seen_subcommand_from stacks plan reload supervise network gpu check start stop restart status logs enable disable swarm notify metrics update help" -f -a "notify" -d 'Send the [notify] messages: a failed unit (from OnFailure=), the ready message, a test'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and not __fish_seen_subcommand_from stacks plan reload supervise network gpu check start stop restart status logs enable disable swarm notify metrics update help" -f -a "metrics" -d 'Print Prometheus metrics of the tree [--serve: answer one HTTP request on stdin]'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and not __fish_seen_subcommand_from stacks plan reload supervise network gpu check start stop restart status logs enable disable swarm notify metrics update help" -f -a "update" -d 'Whether the registries have newer images for the stacks (--check: pulls nothing)'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and not __fish_seen_subcommand_from stacks plan reload supervise network gpu check start stop restart status logs enable disable swarm notify metrics update help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and __fish_seen_subcommand_from network" -f -a "ensure" -d 'Create the configured networks that are missing (idempotent, safe to run concurrently)'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and __fish_seen_subcommand_from network" -f -a "status" -d 'Show each configured network and each other hlsys-managed one: drift, containers'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and __fish_seen_subcommand_from gpu" -f -a "setup" -d 'Register nvidia-container-runtime in /etc/docker/daemon.json (keeps other keys, backs up)'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and __fish_seen_subcommand_from gpu" -f -a "status" -d 'Show the host\'s GPU support and whether each GPU stack\'s mechanisms work here'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and __fish_seen_subcommand_from swarm" -f -a "plan" -d 'Per layer: each stack\'s document for `docker stack deploy`, notes, GPU placement; changes nothing'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and __fish_seen_subcommand_from swarm" -f -a "deploy" -d 'Overlay networks, then each layer\'s stacks, waiting until every service runs healthy'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and __fish_seen_subcommand_from swarm" -f -a "status" -d 'Per layer and stack: services, replicas, tasks with state, node and errors'
complete -c hlsys -n "__fish_hlsys_using_subcommand help; and __fish_seen_subcommand_from swarm" -f -a "rm" -d 'Remove the stacks in reverse layer order (named volumes and networks are kept)'
