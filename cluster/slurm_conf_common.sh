# slurm_conf_common.sh: the slurm.conf lines that the local Slurm (cluster/local_slurm.sh) and the
# namespace-host Slurm (cluster/netns_slurm.sh) share; sourced by both (see shared/SLURM_NOTES.md).
# slurm_conf_common MUNGE_SOCKET: prints them (root daemons, a private munged, no accounting,
# cores as the consumable, pmix for MPI, jobs scheduled at once).
slurm_conf_common() {
  cat <<EOF_COMMON
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$1
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
SlurmdParameters=config_overrides
SchedulerParameters=batch_sched_delay=0
DependencyParameters=kill_invalid_depend
ReturnToService=2
MailProg=/bin/true
KillWait=5
EOF_COMMON
}
