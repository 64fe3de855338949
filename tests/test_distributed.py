"""How a process learns to join its job: flags, JAX's variables, SLURM, Kubernetes/torchrun, Open MPI, TPU VMs."""

from __future__ import annotations

import pytest

from flaxgpt.train.distributed import JoinError, JoinSpec, first_host, join_spec


def test_a_single_process_joins_nothing():
    assert join_spec({}) is None
    assert join_spec({"SLURM_NTASKS": "1", "SLURM_PROCID": "0"}) is None
    assert join_spec({"JOB_COMPLETION_INDEX": "0"}) is None  # a one-pod indexed Job
    assert join_spec({"TPU_WORKER_HOSTNAMES": "localhost"}) is None


def test_jax_variables_give_the_count_and_id_jax_does_not_read_itself():
    spec = join_spec({"JAX_COORDINATOR_ADDRESS": "10.0.0.2", "JAX_COORDINATOR_PORT": "1234",
                      "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "3"})
    assert spec == JoinSpec("10.0.0.2:1234", 4, 3, "JAX_* environment")
    with pytest.raises(JoinError, match="JAX_\\* environment: the number of processes is not set"):
        join_spec({"JAX_COORDINATOR_ADDRESS": "10.0.0.2:1234", "JAX_PROCESS_ID": "0"})
    with pytest.raises(JoinError, match="2 processes but no coordinator address"):
        join_spec({"JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "1"})
    with pytest.raises(JoinError, match="process id 2 is not in \\[0, 2\\)"):
        join_spec({"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "2"})


def test_explicit_flags_win_over_the_environment():
    spec = join_spec({"SLURM_NTASKS": "8"}, coordinator="node1", num_processes=2, process_id=1)
    assert spec == JoinSpec("node1:8476", 2, 1, "--coordinator/--num-processes/--process-id")
    with pytest.raises(JoinError, match="this process's id is not set"):
        join_spec({}, coordinator="node1:9", num_processes=2)


def test_slurm_joins_through_the_first_node_on_a_port_of_its_job():
    spec = join_spec({"SLURM_NTASKS": "4", "SLURM_PROCID": "2", "SLURM_JOB_ID": "4100",
                      "SLURM_STEP_NODELIST": "gpu[07-10],login1"})
    assert spec == JoinSpec("gpu07:61004", 4, 2, "SLURM environment")
    with pytest.raises(JoinError, match="SLURM environment: 2 processes but no coordinator address .*srun"):
        join_spec({"SLURM_NTASKS": "2", "SLURM_PROCID": "0"})  # sbatch without srun: N independent runs before


def test_kubernetes_jobset_torchrun_and_mpi():
    jobset = join_spec({"JOB_COMPLETION_INDEX": "1", "JOBSET_NAME": "train", "REPLICATED_JOB_NAME": "workers",
                        "NNODES": "2"})
    assert jobset == JoinSpec("train-workers-0-0.train:8476", 2, 1, "Kubernetes/torchrun environment")
    torch = join_spec({"MASTER_ADDR": "10.1.1.1", "MASTER_PORT": "29500", "WORLD_SIZE": "2", "RANK": "0"})
    assert torch == JoinSpec("10.1.1.1:29500", 2, 0, "Kubernetes/torchrun environment")
    with pytest.raises(JoinError, match="the number of processes is not set"):
        join_spec({"JOB_COMPLETION_INDEX": "3"})
    mpi = join_spec({"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1", "MASTER_ADDR": "h0"})
    assert mpi == JoinSpec("h0:8476", 2, 1, "Open MPI environment")


def test_tpu_vm_workers_are_left_to_jax():
    assert join_spec({"TPU_WORKER_HOSTNAMES": "t1-w-0,t1-w-1"}) == JoinSpec(None, None, None,
                                                                             "Cloud TPU VM (TPU_WORKER_HOSTNAMES)")


@pytest.mark.parametrize("nodes, host", [("node1", "node1"), ("node[3-5]", "node3"), ("n[009,12]-ib", "n009-ib"),
                                         ("a,b", "a")])
def test_first_host_of_a_slurm_node_list(nodes, host):
    assert first_host(nodes) == host
