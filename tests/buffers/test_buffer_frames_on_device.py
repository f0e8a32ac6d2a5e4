"""frames_on_device: sampled stacks gathered from a copy of the frames on the device are the host path's exactly."""

import io
import pickle

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer

import sb3_sacae.accel.device_frames
import sb3_sacae.buffers
from sb3_sacae import SACAE
from sb3_sacae.accel.device_frames import DeviceFrames, check_device_fits, device_frames_apply, to_device
from sb3_sacae.buffers import FrameStackReplayBuffer
from tests.buffers.test_buffer_matches_sb3 import assert_same_samples
from tests.buffers.test_buffer_streams import FRAME_STACK, stream_spaces, transitions
from tests.conftest import TEST_DEVICE, TinyPixelEnv, tiny_model


def stacked_model(frames_on_device: bool | None = None, **kwargs):
    """A tiny SACAE on 3 stacked frames, with a FrameStackReplayBuffer (``frames_on_device`` as given)."""
    buffer_kwargs = (
        {"frame_stack": 3} if frames_on_device is None else {"frame_stack": 3, "frames_on_device": frames_on_device}
    )
    return tiny_model(
        TinyPixelEnv((9, 32, 32)), replay_buffer_class=FrameStackReplayBuffer, replay_buffer_kwargs=buffer_kwargs, **kwargs
    )


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("p_irregular", [0.0, 0.2])
def test_samples_equal_sb3_replay_buffer(channels_last, p_irregular):
    # the copy is built at the first sample, then every frame stored (wrapping the ring several times) is written to it
    kwargs = dict(buffer_size=40, **stream_spaces(channels_last=channels_last), device=TEST_DEVICE, n_envs=2)
    buffer = FrameStackReplayBuffer(**kwargs, frame_stack=FRAME_STACK, frame_margin=6.0, frames_on_device=True)
    reference = ReplayBuffer(**kwargs)
    for step, transition in enumerate(
        transitions(n_envs=2, n_steps=120, channels_last=channels_last, p_irregular=p_irregular)
    ):
        buffer.add(*transition)
        reference.add(*transition)
        assert_same_samples(buffer, reference, seed=step)
    assert buffer._device_frames is not None and th.equal(buffer._device_frames.frames.cpu(), th.from_numpy(buffer.frames))


def test_a_replaced_frame_ring_is_copied_again():
    kwargs = dict(buffer_size=40, **stream_spaces(), device=TEST_DEVICE, n_envs=2, frame_stack=FRAME_STACK)
    buffer = FrameStackReplayBuffer(**kwargs, frames_on_device=True)
    for transition in transitions(n_envs=2, n_steps=30):
        buffer.add(*transition)
    stale = buffer.sample(4).observations
    # what load_replay_buffer does: new arrays in place of the old ones
    buffer.frames = np.full_like(buffer.frames, 7)
    fresh = buffer.sample(4).observations
    assert stale.shape == fresh.shape and bool((fresh == 7).all())


def test_the_copy_is_not_part_of_the_saved_buffer(tmp_path):
    """A buffer saved with frames_on_device loads into a model that samples on the host, and back."""
    on_device = stacked_model(frames_on_device=True)
    on_device.learn(40)
    on_device.replay_buffer.sample(4)  # builds the copy
    on_device.save_replay_buffer(tmp_path / "buffer.npz")
    on_host = stacked_model(frames_on_device=False)
    on_host.load_replay_buffer(tmp_path / "buffer.npz")
    np.testing.assert_array_equal(on_host.replay_buffer.frames, on_device.replay_buffer.frames)
    assert on_host.replay_buffer.frames_on_device is False and on_host.replay_buffer._device_frames is None
    saved = io.BytesIO()
    on_host.save_replay_buffer(saved)
    saved.seek(0)
    on_device.load_replay_buffer(saved)
    np.random.seed(0)
    host_sample = on_host.replay_buffer.sample(8)
    np.random.seed(0)
    device_sample = on_device.replay_buffer.sample(8)
    assert th.equal(host_sample.observations, device_sample.observations)
    assert th.equal(host_sample.next_observations, device_sample.next_observations)


def test_training_from_the_copy_equals_training_from_the_host():
    models = []
    for on in (False, True):  # one after the other: each model seeds the global generators when it is built
        models.append(stacked_model(frames_on_device=on).learn(48))
    assert [model.replay_buffer.frames_on_device for model in models] == [False, True]
    host, device = (model.policy.state_dict() for model in models)
    for name, value in host.items():
        assert th.equal(value, device[name]), name


def test_sampling_on_the_device_is_chosen_for_cuda_only_and_off_with_fast_kernels_off():
    assert device_frames_apply("cpu", 1) is False
    assert stacked_model().replay_buffer.frames_on_device is device_frames_apply(TEST_DEVICE, 1)
    plain = stacked_model(fast_kernels=False)
    assert isinstance(plain.replay_buffer, FrameStackReplayBuffer) and plain.replay_buffer.frames_on_device is False


def test_device_frames_writes_and_gathers():
    host = np.arange(5 * 2 * 3, dtype=np.uint8).reshape(5, 2, 3)
    copy = DeviceFrames(host, TEST_DEVICE)
    assert copy.mirrors(host) and not copy.mirrors(host.copy())
    copy.write(1, np.full((2, 3), 9, np.uint8))
    gathered = copy.gather(np.array([[1, 0], [4, 1]]))
    assert gathered.shape == (2, 2, 2, 3) and gathered.device == th.device(TEST_DEVICE)
    assert bool((gathered[0, 0] == 9).all()) and th.equal(gathered[1, 0].cpu(), th.from_numpy(host[4]))
    # the copy is its own memory: the host ring is not written through it
    np.testing.assert_array_equal(host[1], [[6, 7, 8], [9, 10, 11]])


@pytest.mark.skipif(not th.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_copy_larger_than_the_gpu_is_refused_with_the_fix():
    with pytest.raises(MemoryError, match="pass frames_on_device=False"):
        check_device_fits("cuda", 1 << 50)


def test_a_loaded_model_samples_where_this_machine_allows(tmp_path):
    """frames_on_device=True is saved with the model's replay_buffer_kwargs; loading it chooses anew (None)."""
    stacked_model(frames_on_device=True).save(tmp_path / "model.zip")
    loaded = SACAE.load(tmp_path / "model.zip", env=TinyPixelEnv((9, 32, 32)), device=TEST_DEVICE)
    assert loaded.replay_buffer.frames_on_device is device_frames_apply(TEST_DEVICE, 1)


def test_a_pickled_buffer_holds_the_host_frames_only():
    buffer = FrameStackReplayBuffer(40, **stream_spaces(), device=TEST_DEVICE, frame_stack=FRAME_STACK, frames_on_device=True)
    for transition in transitions(n_envs=1, n_steps=30):
        buffer.add(*transition)
    np.random.seed(0)
    before = buffer.sample(8)
    assert buffer._device_frames is not None
    restored = pickle.loads(pickle.dumps(buffer))
    assert restored._device_frames is None and restored.frames_on_device
    np.random.seed(0)
    after = restored.sample(8)
    assert th.equal(before.observations, after.observations) and th.equal(before.next_observations, after.next_observations)
    # a buffer pickled before frames_on_device existed samples on the host
    state = restored.__getstate__()
    del state["frames_on_device"], state["_device_frames"]
    old = FrameStackReplayBuffer.__new__(FrameStackReplayBuffer)
    old.__setstate__(state)
    np.random.seed(0)
    assert old.frames_on_device is False and th.equal(old.sample(8).observations, before.observations)


def test_frames_of_any_strides_reach_the_copy():
    """Observations with negative strides (a flipped view) are stored and copied as the host ring holds them."""
    kwargs = dict(buffer_size=20, **stream_spaces(), device=TEST_DEVICE, frame_stack=FRAME_STACK)
    host, on_device = (FrameStackReplayBuffer(**kwargs, frames_on_device=on) for on in (False, True))
    for step, (obs, next_obs, *rest) in enumerate(transitions(n_envs=1, n_steps=25)):
        for buffer in (host, on_device):
            buffer.add(obs[..., ::-1], next_obs[..., ::-1], *rest)
            if step == 2:
                buffer.sample(2)  # the copy exists from here on
    np.random.seed(1)
    expected = host.sample(8)
    np.random.seed(1)
    assert th.equal(on_device.sample(8).observations, expected.observations)


@pytest.mark.parametrize(
    "device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not th.cuda.is_available(), reason="needs CUDA"))]
)
def test_arrays_sent_to_the_device_are_copies_taken_at_the_call(device):
    # on CUDA through pinned memory, without waiting: the array may change as soon as the call returns
    array = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2]  # not contiguous
    sent = to_device(array, device)
    expected = array.copy()
    array[:] = -1
    assert sent.device.type == device and sent.dtype == th.float32
    np.testing.assert_array_equal(sent.cpu().numpy(), expected)


@pytest.mark.parametrize("frames_on_device", [False, True])
def test_with_the_frames_on_the_device_the_rest_of_a_batch_is_sent_from_pinned_memory(monkeypatch, frames_on_device):
    model = stacked_model(frames_on_device)
    model.learn(24)
    sent = []

    def spy(array, device):
        sent.append(array.shape)
        return to_device(array, device)

    monkeypatch.setattr(sb3_sacae.buffers, "to_device", spy)
    monkeypatch.setattr(sb3_sacae.accel.device_frames, "to_device", spy)
    batch = model.replay_buffer.sample(8)
    # frame indices, actions, dones and rewards through to_device; the host path copies as SB3's buffers do
    assert sorted(sent) == (sorted([(16, 3), (8, 2), (8, 1), (8, 1)]) if frames_on_device else [])
    assert batch.actions.shape == (8, 2) and batch.rewards.shape == (8, 1)
